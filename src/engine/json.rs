//! `--json` output: any value a script returns, written as one JSON document. A `VmList` is
//! streamed row by row, so 100,000 VMs never sit in memory at once.

use super::values::{vm_map, VmList};
use rhai::{Array, Dynamic, ImmutableString, Map};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::cell::RefCell;

/// Serialises a script value as JSON.
pub struct Json<'a>(pub &'a Dynamic);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_unit() {
            s.serialize_unit()
        } else if let Ok(b) = v.as_bool() {
            s.serialize_bool(b)
        } else if let Ok(i) = v.as_int() {
            s.serialize_i64(i)
        } else if let Ok(f) = v.as_float() {
            s.serialize_f64(f)
        } else if let Ok(c) = v.as_char() {
            s.serialize_char(c)
        } else if let Some(text) = v.read_lock::<ImmutableString>() {
            s.serialize_str(text.as_str())
        } else if let Some(array) = v.read_lock::<Array>() {
            let mut seq = s.serialize_seq(Some(array.len()))?;
            for item in array.iter() {
                seq.serialize_element(&Json(item))?;
            }
            seq.end()
        } else if let Some(map) = v.read_lock::<Map>() {
            let mut out = s.serialize_map(Some(map.len()))?;
            for (k, item) in map.iter() {
                out.serialize_entry(k.as_str(), &Json(item))?;
            }
            out.end()
        } else if let Some(list) = v.read_lock::<VmList>() {
            serialize_vm_list(&list, s)
        } else {
            s.serialize_str(&v.to_string())
        }
    }
}

fn serialize_vm_list<S: Serializer>(list: &VmList, s: S) -> Result<S::Ok, S::Error> {
    let seq = RefCell::new(s.serialize_seq(None)?);
    let mut failure: Option<S::Error> = None;
    let read = list.for_each(|vm| {
        let row = Dynamic::from_map(vm_map(&vm));
        match seq.borrow_mut().serialize_element(&Json(&row)) {
            Ok(()) => Ok(()),
            Err(e) => {
                failure = Some(e);
                Err("stopped".into())
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    read.map_err(|e| S::Error::custom(super::HostError::message_of(&e)))?;
    seq.into_inner().end()
}
