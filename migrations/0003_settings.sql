-- vgpu-admin schema, version 3: site settings.
--
-- hook_policy: what the vm-pre-start hook does when it finds a VM whose
--   device-model-args differ from the database: 'warn' (correct them for the
--   next boot, log, let the start go on) or 'enforce' (correct them and stop
--   this start, so the next one boots right).
-- hook_time_limit: seconds the hook may take before it gives up (it must never
--   hang a VM start).

CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

INSERT OR IGNORE INTO settings (key, value) VALUES
    ('hook_policy', 'warn'),
    ('hook_time_limit', '10');
