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
    match write_row(uuid, &vm.name, &config, store, dry_run) {
        Ok(row) => Ok(FromPool::Written(row, Box::new(vm))),
        Err(e @ StoreError::VmIdTaken { .. }) => Err(Failure::usage(format!(
            "the pool record of VM {uuid} gives it a vm_id this host's database has for another VM: {e}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Registers VM `uuid` (name-label `label`) with the configuration its pool record gives it;
/// under a dry run, the row it would be.
fn write_row(
    uuid: &VmUuid,
    label: &str,
    config: &crate::model::VmConfig,
    store: &Store,
    dry_run: bool,
) -> Result<VmRecord, StoreError> {
    let (name, _) = VmName::from_label(label);
    let new = NewVm {
        uuid: uuid.clone(),
        name,
        pool: config.pool,
        priority: config.priority,
        vm_id: Some(config.vm_id),
    };
    if dry_run {
        store.preview_register(&new, &Default::default())
    } else {
        store.register_from_pool(&new)
    }
}

/// What `sync` did (or, under a dry run, would do) with one VM of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// The VM has no pool record.
    NoRecord,
    /// Its record is not believed, and why.
    Unverified(String),
    /// The row already says what the record says.
    Same,
    /// A row was written from the record.
    Added(Box<VmRecord>),
    /// The row was refreshed from the record (the VM's args agree with the record: the change
    /// was made on another host); the row before and after.
    Updated(Box<VmRecord>, Box<VmRecord>),
    /// The row, the record and the VM's args disagree: nothing was written; why.
    Conflict(String),
}

/// Brings this host's row of `vm` (as the pool listing shows it) in line with its pool record
/// where that is safe: a missing row is added, a row the record and the VM's args both
/// contradict is refreshed, anything else is a conflict, reported and left alone.
pub fn sync_one(
    vm: &HostVm,
    store: &Store,
    key: Option<&PoolKey>,
    dry_run: bool,
) -> Result<Synced, Failure> {
    let uuid = VmUuid::parse(&vm.uuid).map_err(|e| Failure::failed(e.to_string()))?;
    let config = match pool_record::read(&vm.pool_record, uuid.as_str(), key) {
        Claim::None => return Ok(Synced::NoRecord),
        Claim::Unverified(why) => return Ok(Synced::Unverified(why)),
        Claim::Valid(config) => config,
    };
    let row = store.vm(uuid.as_str())?;
    let Some(row) = row else {
        return match write_row(&uuid, &vm.name, &config, store, dry_run) {
            Ok(row) => Ok(Synced::Added(Box::new(row))),
            Err(e @ StoreError::VmIdTaken { .. }) => Ok(Synced::Conflict(format!(
                "its pool record gives it vm_id {}, which this database has for another VM ({e})",
                config.vm_id.get()
            ))),
            Err(e) => Err(e.into()),
        };
    };
    if row.config().as_ref() == Some(&config) {
        return Ok(Synced::Same);
    }
    let describe = |c: &crate::model::VmConfig| {
        format!(
            "pool {}, priority {}, vm_id {}",
            c.pool,
            c.priority,
            c.vm_id.get()
        )
    };
    let database = row
        .config()
        .map_or_else(|| "an invalid entry".to_string(), |c| describe(&c));
    let args_agree =
        crate::vgpu::sync(vm.device_model_args(), &config) == crate::vgpu::Sync::InSync;
    if !args_agree {
        return Ok(Synced::Conflict(format!(
            "this database says {database}, the pool record {}, and the VM's args agree with neither (see 'vgpu-admin check')",
            describe(&config)
        )));
    }
    let changes = crate::store::VmChanges {
        name: None,
        pool: Some(config.pool),
        priority: Some(config.priority),
        vm_id: Some(config.vm_id),
        ..Default::default()
    };
    let updated = if dry_run {
        store
            .preview_update(uuid.as_str(), &changes, &Default::default())
            .map(|after| (row.clone(), after))
    } else {
        store.update_saying(
            uuid.as_str(),
            &changes,
            &Default::default(),
            "refreshed from the VM's pool record (changed on another host of the pool)",
        )
    };
    match updated {
        Ok((before, after)) => Ok(Synced::Updated(Box::new(before), Box::new(after))),
        Err(e @ StoreError::VmIdTaken { .. }) => Ok(Synced::Conflict(format!(
            "its pool record gives it vm_id {}, which this database has for another VM ({e})",
            config.vm_id.get()
        ))),
        Err(e) => Err(e.into()),
    }
}
