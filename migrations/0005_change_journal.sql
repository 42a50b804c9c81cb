-- vgpu-admin schema, version 5: the change journal.
--
-- A change to a VM writes two places that cannot share a transaction: the VM's
-- platform:device-model-args (through xe) and its row here. Before touching
-- anything, the change is recorded in this table: the row and the args before
-- and after, the VM's power state, whether it is restarted, and the step
-- reached. The entry goes when the change is complete. An entry whose process
-- died (kill -9, a crash, a host reset) is found by the next command, and
-- 'vgpu-admin recover' (or the next change to that VM, or the startup hook of
-- that VM) completes or undoes it. The vm_id of an entry is reserved: no other
-- change takes it meanwhile.

CREATE TABLE IF NOT EXISTS change_journal (
    vm_uuid TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('register', 'update', 'remove', 'repair')),
    vm_id INTEGER,
    row_before TEXT,
    row_after TEXT,
    args_before TEXT,
    args_after TEXT,
    power_before TEXT NOT NULL,
    restart INTEGER NOT NULL DEFAULT 0,
    pending INTEGER,
    step TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
