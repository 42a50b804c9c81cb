-- vgpu-admin schema, version 1.
--
-- This is the schema the earlier C tool created (init_db.sql), kept exactly so
-- that its databases keep working. Every statement is "IF NOT EXISTS" /
-- "OR IGNORE": applied to a database made by that tool (user_version 0, the
-- same tables), it changes nothing and keeps every row.

CREATE TABLE IF NOT EXISTS pools (
    pool_id CHAR(1) PRIMARY KEY CHECK(pool_id IN ('A', 'B')),
    pool_name TEXT NOT NULL,
    description TEXT,
    enabled INTEGER DEFAULT 1 CHECK(enabled IN (0, 1)),
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS vms (
    vm_id INTEGER NOT NULL UNIQUE,
    vm_uuid TEXT UNIQUE NOT NULL,
    vm_name TEXT,
    pool_id CHAR(1) NOT NULL DEFAULT 'A' CHECK(pool_id IN ('A', 'B')),
    priority INTEGER NOT NULL DEFAULT 1 CHECK(priority IN (0, 1, 2)),
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (pool_id) REFERENCES pools(pool_id)
);

CREATE INDEX IF NOT EXISTS idx_vm_uuid ON vms(vm_uuid);
CREATE INDEX IF NOT EXISTS idx_vm_pool ON vms(pool_id);
CREATE INDEX IF NOT EXISTS idx_vm_priority ON vms(priority);

INSERT OR IGNORE INTO pools (pool_id, pool_name, enabled) VALUES
    ('A', 'Pool A', 1),
    ('B', 'Pool B', 1);
