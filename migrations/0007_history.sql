-- vgpu-admin schema, version 7: the audit trail.
--
-- One row per change to a VM's vGPU configuration, written in the same
-- transaction as the change (a change that failed records its failure): when,
-- which command, which VM, its configuration before and after (JSON: vm_id,
-- vm_name, pool_id, priority; NULL when not registered), the outcome, who ran
-- it (SUDO_USER or the login name) and on which host. 'vgpu-admin history'
-- shows it.

CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    command TEXT NOT NULL,
    vm_uuid TEXT,
    config_before TEXT,
    config_after TEXT,
    outcome TEXT NOT NULL,
    user TEXT NOT NULL,
    host TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS history_by_vm ON history (vm_uuid, at);
CREATE INDEX IF NOT EXISTS history_by_time ON history (at);
