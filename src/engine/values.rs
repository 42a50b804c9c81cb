//! How database rows look to scripts: object maps with the same field names as the JSON output,
//! and `VmList`, a lazy list of VMs that is read from the database only when it is used.

use super::HostError;
use crate::model::printable;
use crate::store::{PoolRecord, Store, VmFilter, VmRecord};
use crate::template::Fields;
use rhai::{Array, Dynamic, EvalAltResult, Map};
use std::borrow::Cow;
use std::rc::Rc;

/// A VM row as a script sees it (text with control characters escaped): `vm_uuid`, `vm_id`,
/// `vm_name` (or `()`), `pool_id`, `priority`
/// (word), `priority_level` (0/1/2), `created_at`, `updated_at`, `invalid` (why the row is
/// invalid, or `()`), `restart_pending` (true while a running VM still has its previous
/// settings).
pub fn vm_map(vm: &VmRecord) -> Map {
    let mut m = Map::new();
    // Text the earlier tool stored unchecked may hold control characters: shown escaped.
    m.insert("vm_uuid".into(), printable(&vm.vm_uuid).into_owned().into());
    m.insert("vm_id".into(), vm.vm_id.into());
    m.insert(
        "vm_name".into(),
        vm.vm_name
            .as_deref()
            .map_or(Dynamic::UNIT, |n| Dynamic::from(printable(n).into_owned())),
    );
    m.insert("pool_id".into(), vm.pool_id.clone().into());
    m.insert("priority".into(), vm.priority_word().into());
    m.insert("priority_level".into(), vm.priority_level.into());
    m.insert("created_at".into(), vm.created_at.clone().into());
    m.insert("updated_at".into(), vm.updated_at.clone().into());
    m.insert(
        "invalid".into(),
        vm.problem().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert("restart_pending".into(), vm.restart_pending.into());
    m
}

/// A pool row as a script sees it: `pool_id`, `pool_name`, `description` (or `()`), `enabled`,
/// `vm_count`, `created_at`, `updated_at`.
pub fn pool_map(p: &PoolRecord) -> Map {
    let mut m = Map::new();
    m.insert("pool_id".into(), p.pool_id.clone().into());
    m.insert("pool_name".into(), p.pool_name.clone().into());
    m.insert(
        "description".into(),
        p.description.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert("enabled".into(), p.enabled.into());
    m.insert("vm_count".into(), p.vm_count.into());
    m.insert("created_at".into(), p.created_at.clone().into());
    m.insert("updated_at".into(), p.updated_at.clone().into());
    m
}

impl Fields for VmRecord {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        Some(match name {
            "vm_uuid" => Cow::Borrowed(self.vm_uuid.as_str()),
            "vm_id" => Cow::Owned(self.vm_id.to_string()),
            "vm_name" => Cow::Borrowed(self.vm_name.as_deref()?),
            "pool_id" => Cow::Borrowed(self.pool_id.as_str()),
            "priority" => Cow::Borrowed(self.priority_word()),
            "priority_level" => Cow::Owned(self.priority_level.to_string()),
            "created_at" => Cow::Borrowed(self.created_at.as_str()),
            "updated_at" => Cow::Borrowed(self.updated_at.as_str()),
            "invalid" => Cow::Owned(self.problem()?),
            "restart_pending" if self.restart_pending => Cow::Borrowed("yes"),
            _ => return None,
        })
    }
}

impl Fields for Map {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        let value = self.get(name)?;
        if value.is_unit() || value.as_bool() == Ok(false) {
            None
        } else if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
            Some(Cow::Owned(s.to_string()))
        } else {
            Some(Cow::Owned(value.to_string()))
        }
    }
}

/// The VMs matching a filter, read from the database when used: iterate it with `for`, index it,
/// ask its `len()`, turn it into an array with `to_array()`, or hand it to `ui::print_each` and
/// `--json` output, which stream it row by row.
#[derive(Clone)]
pub struct VmList {
    store: Rc<Store>,
    filter: VmFilter,
}

impl VmList {
    /// A lazy list of the VMs in `store` matching `filter`.
    pub fn new(store: Rc<Store>, filter: VmFilter) -> Self {
        VmList { store, filter }
    }

    /// Calls `each` for every VM, in vm_id order, without loading them all.
    pub fn for_each(
        &self,
        each: impl FnMut(VmRecord) -> Result<(), Box<EvalAltResult>>,
    ) -> Result<(), Box<EvalAltResult>> {
        self.store.for_each_vm(self.filter, each)
    }

    /// How many VMs the list holds (one COUNT query).
    pub fn count(&self) -> Result<i64, Box<EvalAltResult>> {
        self.store.count_vms(self.filter).map_err(HostError::store)
    }

    /// All rows as maps.
    pub fn to_array(&self) -> Result<Array, Box<EvalAltResult>> {
        let mut out = Array::new();
        self.for_each(|vm| {
            out.push(Dynamic::from_map(vm_map(&vm)));
            Ok(())
        })?;
        Ok(out)
    }
}

impl From<crate::store::StoreError> for Box<EvalAltResult> {
    fn from(e: crate::store::StoreError) -> Self {
        HostError::store(e)
    }
}

impl IntoIterator for VmList {
    type Item = Result<Dynamic, Box<EvalAltResult>>;
    type IntoIter = std::vec::IntoIter<Self::Item>;

    fn into_iter(self) -> Self::IntoIter {
        match self.to_array() {
            Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>().into_iter(),
            Err(e) => vec![Err(e)].into_iter(),
        }
    }
}
