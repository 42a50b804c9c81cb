//! A VM this host has no row for, registered on another host of the pool: its signed pool
//! record (see [`crate::pool_record`]) becomes this host's row, so that the startup hook and the
//! GPU mediator here know it.

use crate::exit::Failure;
use crate::model::{VmName, VmUuid};
use crate::pool_record::{self, Claim, PoolKey};
use crate::store::{NewVm, Store, StoreError, VmRecord};
use crate::xe::{HostVm, Xe};

/// What the pool says of a VM this host does not know.
pub enum FromPool {
    /// No record: the VM is not registered anywhere (or this host has no pool key to check
    /// records with, so it reads none).
    NotRegistered,
    /// A record that is not believed, and why.
    Unverified(String),
    /// The row written from the record (under a dry run, the row it would be), and the VM as
    /// read.
    Written(VmRecord, Box<HostVm>),
}

/// Reads VM `uuid` in one xe call and writes its row from its pool record when the record's
/// signature checks out. A vm_id another row of this database holds is an error (the database
/// is left as it is).
pub fn register_from_pool(
    uuid: &VmUuid,
    store: &Store,
    xe: &Xe,
    key: Option<&PoolKey>,
    dry_run: bool,
) -> Result<FromPool, Failure> {
    let Some(key) = key else {
        return Ok(FromPool::NotRegistered);
    };
    let Some(vm) = xe
        .vm_at_a_glance(uuid.as_str())
        .map_err(|e| Failure::failed(e.to_string()))?
    else {
        return Ok(FromPool::NotRegistered);
    };
    let config = match pool_record::read(&vm.pool_record, uuid.as_str(), Some(key)) {
        Claim::None => return Ok(FromPool::NotRegistered),
        Claim::Unverified(why) => return Ok(FromPool::Unverified(why)),
        Claim::Valid(config) => config,
    };
    let (name, _) = VmName::from_label(&vm.name);
    let new = NewVm {
        uuid: uuid.clone(),
        name,
        pool: config.pool,
        priority: config.priority,
        vm_id: Some(config.vm_id),
    };
    let row = if dry_run {
        store.preview_register(&new, &Default::default())
    } else {
        store.register_from_pool(&new)
    };
    match row {
        Ok(row) => Ok(FromPool::Written(row, Box::new(vm))),
        Err(e @ StoreError::VmIdTaken { .. }) => Err(Failure::usage(format!(
            "the pool record of VM {uuid} gives it a vm_id this host's database has for another VM: {e}"
        ))),
        Err(e) => Err(e.into()),
    }
}
