-- vgpu-admin schema, version 8: the GPU mediator's scheduler controls.
--
-- The GPU mediator adds these five columns to vms itself when it starts and
-- finds no 'weight' column, with exactly these names, types and defaults. So
-- each statement here runs only when its column is missing (the migration is a
-- no-op on a database the mediator has already extended), and the mediator's
-- own check still finds them afterwards.
--   weight            scheduler weight, 1..100
--   max_jobs_per_sec  rate limit, 0 = unlimited
--   max_queue_depth   queued jobs limit, 0 = unlimited
--   quarantined       1 = new GPU submissions of this VM are rejected
--   error_count       faults counted by the mediator

ALTER TABLE vms ADD COLUMN weight INTEGER NOT NULL DEFAULT 50;
ALTER TABLE vms ADD COLUMN max_jobs_per_sec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN max_queue_depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0;
