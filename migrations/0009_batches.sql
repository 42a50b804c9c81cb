-- vgpu-admin schema, version 9: changes made as part of a run over many VMs.
--
-- A run that changes many VMs (a selection, or 'vgpu-admin apply FILE') records
-- each VM's change with the run's description. When such a run dies with a VM
-- stopped and its change not yet written, finishing it writes the change and
-- starts the VM (once), rather than starting it again unchanged: running the
-- same command again then finds that VM done and restarts no VM twice.

ALTER TABLE change_journal ADD COLUMN batch TEXT;
