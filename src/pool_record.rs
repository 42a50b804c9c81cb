//! The VM's vGPU configuration as xapi's pool database holds it, so that every host of the pool
//! sees it: `other-config` keys under `vgpu-admin:` on the VM, signed.
//!
//! A VM's owner can write its `other-config` (and its platform) through xapi, so a record is
//! only believed when its signature checks out: an HMAC-SHA256, with the pool's key
//! (`pool.key` beside the database, the same file on every host of the pool), over the VM's
//! uuid and the configuration. A record copied from another VM, or onto a clone, names another
//! uuid and fails; so does one written in part.
//!
//! One `xe vm-param-set` is not atomic (its keys are applied in turn), so the signature is
//! written first, then the device-model-args, then the values: a call that stops half-way leaves
//! either nothing applied or a record whose signature does not match its values — one that
//! claims nothing — never a valid record for a configuration the args do not have.

use crate::model::{Pool, Priority, VmConfig, VmId};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The prefix of our keys in `other-config`.
pub const PREFIX: &str = "vgpu-admin:";
/// The signature key.
pub const SIG: &str = "vgpu-admin:sig";
/// The pool key.
pub const POOL: &str = "vgpu-admin:pool";
/// The priority key.
pub const PRIORITY: &str = "vgpu-admin:priority";
/// The vm_id key.
pub const VM_ID: &str = "vgpu-admin:vm-id";
/// Our keys, in the order one call writes them: the signature first.
pub const KEYS: [&str; 4] = [SIG, POOL, PRIORITY, VM_ID];
/// Put in a record read from a listing when one of our keys appeared twice (a value of another
/// key imitating ours): such a record is not believed.
pub const DUPLICATE: &str = "vgpu-admin:!duplicate";

/// The pool key's file name, beside the database.
pub const KEY_FILE: &str = "pool.key";

/// The pool's signing key.
pub struct PoolKey(Vec<u8>);

/// 32 bytes from 64 hexadecimal digits.
fn hex_32(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// Where the pool key of the database at `db` lives.
pub fn key_path(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new(".")).join(KEY_FILE)
}

impl PoolKey {
    /// The key at `path`, if the file is there (64 hex digits); an unreadable or malformed file
    /// is an error.
    pub fn load(path: &Path) -> Result<Option<PoolKey>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read the pool key {}: {e}", path.display())),
        };
        match hex_32(text.trim()) {
            Some(b) => Ok(Some(PoolKey(b))),
            None => Err(format!(
                "the pool key {} is not 64 hexadecimal digits",
                path.display()
            )),
        }
    }

    /// The key at `path`, made (32 random bytes, mode 0600) when there is none yet.
    pub fn load_or_create(path: &Path) -> Result<PoolKey, String> {
        if let Some(key) = Self::load(path)? {
            return Ok(key);
        }
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| format!("cannot make a pool key: {e}"))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(format!("{hex}\n").as_bytes()));
        match created {
            Ok(()) => Ok(PoolKey(bytes.to_vec())),
            // Another process made it meanwhile: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load(path)?.ok_or_else(|| format!("the pool key {} vanished", path.display()))
            }
            Err(e) => Err(format!("cannot write the pool key {}: {e}", path.display())),
        }
    }

    fn mac(&self, uuid: &str, pool: &str, priority: &str, vm_id: &str) -> Hmac<Sha256> {
        // A key of any length is accepted by HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(
            format!("vgpu-admin record v1\n{uuid}\n{pool}\n{priority}\n{vm_id}\n").as_bytes(),
        );
        mac
    }

    /// The signature of `config` for VM `uuid` (64 hex digits).
    pub fn sign(&self, uuid: &str, config: &VmConfig) -> String {
        let mac = self.mac(
            uuid,
            config.pool.as_str(),
            config.priority.as_str(),
            &config.vm_id.get().to_string(),
        );
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The `other-config` entries that record `config` for VM `uuid`, in writing order.
pub fn entries(key: &PoolKey, uuid: &str, config: &VmConfig) -> Vec<(String, String)> {
    vec![
        (SIG.to_string(), key.sign(uuid, config)),
        (POOL.to_string(), config.pool.to_string()),
        (PRIORITY.to_string(), config.priority.to_string()),
        (VM_ID.to_string(), config.vm_id.get().to_string()),
    ]
}

/// What a VM's pool record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No record.
    None,
    /// A record whose signature checks out with this host's pool key.
    Valid(VmConfig),
    /// A record that is not believed, and why.
    Unverified(String),
}

/// Reads a VM's record (its `vgpu-admin:` keys) with the pool key, if this host has one.
pub fn read(record: &BTreeMap<String, String>, uuid: &str, key: Option<&PoolKey>) -> Claim {
    if record.is_empty() {
        return Claim::None;
    }
    if record.contains_key(DUPLICATE) {
        return Claim::Unverified("one of its keys appears twice".into());
    }
    let get = |k: &str| record.get(k).map(String::as_str);
    let (Some(sig), Some(pool), Some(priority), Some(vm_id)) =
        (get(SIG), get(POOL), get(PRIORITY), get(VM_ID))
    else {
        return Claim::Unverified("it is incomplete".into());
    };
    let Some(key) = key else {
        return Claim::Unverified("this host has no pool key to check it with".into());
    };
    let config = match (
        Pool::exact(pool),
        Priority::parse(priority),
        VmId::parse(vm_id),
    ) {
        (Some(pool), Ok(priority), Ok(vm_id)) => VmConfig {
            pool,
            priority,
            vm_id,
        },
        _ => return Claim::Unverified("its values are not valid".into()),
    };
    let expected = key.sign(uuid, &config);
    // Compared in constant time by the MAC itself.
    let ok = hex_32(sig).is_some_and(|g| {
        key.mac(uuid, config.pool.as_str(), config.priority.as_str(), vm_id)
            .verify_slice(&g)
            .is_ok()
    }) && expected.len() == 64;
    if ok {
        Claim::Valid(config)
    } else {
        Claim::Unverified("its signature does not match (another pool's key, another VM's record, or written in part)".into())
    }
}

/// The vm_id a record names, believed or not (an id it names counts as taken).
pub fn named_vm_id(record: &BTreeMap<String, String>) -> Option<u32> {
    record.get(VM_ID).and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pool: Pool, priority: Priority, id: i64) -> VmConfig {
        VmConfig {
            pool,
            priority,
            vm_id: VmId::new(id).unwrap(),
        }
    }

    #[test]
    fn a_record_is_believed_only_for_its_vm_its_values_and_its_pool_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = PoolKey::load_or_create(&dir.path().join("pool.key")).unwrap();
        let other = PoolKey::load_or_create(&dir.path().join("other.key")).unwrap();
        let uuid = "7d5a8c3e-92f1-4b6a-b0c2-000000000001";
        let c = config(Pool::B, Priority::High, 7);
        let record: BTreeMap<String, String> = entries(&key, uuid, &c).into_iter().collect();
        assert_eq!(read(&record, uuid, Some(&key)), Claim::Valid(c.clone()));
        // Another VM (a clone, a copy), another pool's key, no key, a value changed.
        assert!(matches!(
            read(&record, "7d5a8c3e-92f1-4b6a-b0c2-000000000002", Some(&key)),
            Claim::Unverified(_)
        ));
        assert!(matches!(
            read(&record, uuid, Some(&other)),
            Claim::Unverified(_)
        ));
        assert!(matches!(read(&record, uuid, None), Claim::Unverified(_)));
        let mut raised = record.clone();
        raised.insert(PRIORITY.into(), "high".into());
        raised.insert(POOL.into(), "A".into());
        assert!(matches!(
            read(&raised, uuid, Some(&key)),
            Claim::Unverified(_)
        ));
        // Written in part: the new signature with old values.
        let newer: BTreeMap<String, String> =
            entries(&key, uuid, &config(Pool::A, Priority::Low, 7))
                .into_iter()
                .collect();
        let mut half = record.clone();
        half.insert(SIG.into(), newer[SIG].clone());
        assert!(matches!(
            read(&half, uuid, Some(&key)),
            Claim::Unverified(_)
        ));
        assert_eq!(read(&BTreeMap::new(), uuid, Some(&key)), Claim::None);
        assert_eq!(named_vm_id(&record), Some(7));
        // The key file: 0600, read back the same.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("pool.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = PoolKey::load(&dir.path().join("pool.key"))
            .unwrap()
            .unwrap();
        assert_eq!(again.sign(uuid, &c), key.sign(uuid, &c));
    }
}
