-- vgpu-admin schema, version 2.
--
-- vgpu-admin stores VM uuids in lowercase, as xe prints them. The earlier tool
-- stored whatever was typed. Lowercase the uuids it stored in capitals, so that
-- they are found again. A row whose lowercased uuid is already taken by another
-- row is left as it is (and listed as invalid): no row is ever dropped.

UPDATE OR IGNORE vms
   SET vm_uuid = lower(vm_uuid)
 WHERE vm_uuid <> lower(vm_uuid);
