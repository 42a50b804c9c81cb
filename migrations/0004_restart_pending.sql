-- vgpu-admin schema, version 4: changes waiting for a VM restart.
--
-- A row here means: the VM was running when its vGPU settings were changed
-- without restarting it (--no-restart, or "no" to the restart offered by
-- register-vm), so the running QEMU still has the previous settings. The row
-- goes when vgpu-admin restarts the VM, or when the vm-pre-start hook sees
-- the VM start with the database's settings. A table of its own: the vms
-- table is shared with the GPU mediator and is left as it is.

CREATE TABLE IF NOT EXISTS restart_pending (
    vm_uuid TEXT PRIMARY KEY,
    since TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
