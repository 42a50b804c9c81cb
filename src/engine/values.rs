//! How database rows look to scripts: object maps with the same field names as the JSON output,
//! and `VmList`, a lazy list of VMs that is read from the database only when it is used.

use super::HostError;
use crate::store::{PoolRecord, Store, VmFilter, VmRecord};
use crate::template::Fields;
use rhai::{Array, Dynamic, EvalAltResult, Map};
use std::borrow::Cow;
use std::rc::Rc;

/// A VM row as a script sees it: the record's fields (see [`VmRecord`]) as a map.
pub fn vm_map(vm: &VmRecord) -> Map {
    to_map(vm)
}

/// A pool row as a script sees it: the record's fields (see [`PoolRecord`]) as a map.
pub fn pool_map(p: &PoolRecord) -> Map {
    to_map(p)
}

/// A record as a map, through its `Serialize` (the one list of its fields).
pub fn to_map(record: &impl serde::Serialize) -> Map {
    rhai::serde::to_dynamic(record)
        .ok()
        .and_then(|d| d.try_cast::<Map>())
        .unwrap_or_default()
}

impl Fields for VmRecord {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        crate::template::field_of(self, name).map(Cow::Owned)
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
