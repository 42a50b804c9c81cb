-- vgpu-admin schema, version 6: where a restarted VM is started again.
--
-- A VM stopped for a change is started again on the host it was resident on
-- (xe vm-start on=<host>): without it the pool master picks a host, and the VM
-- could come back on one whose GPUs and GPU mediator are not the ones it had.
-- The host is recorded with the change, so that a change finished by
-- 'vgpu-admin recover' starts the VM there too.

ALTER TABLE change_journal ADD COLUMN start_on TEXT;
