//! The host's identity: `INSTALLATION_UUID` in `/etc/xensource-inventory` (`KEY='value'`
//! lines, as xapi writes them) is the uuid of the host of the pool this dom0 is.

use std::path::Path;

/// Where XCP-ng keeps the host's inventory.
pub const DEFAULT_INVENTORY: &str = "/etc/xensource-inventory";

/// The uuid of this host, from the inventory at `path`; `None` when it cannot be read or holds
/// no well-formed `INSTALLATION_UUID`.
pub fn installation_uuid(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix("INSTALLATION_UUID=")?;
        let value = value.trim().trim_matches(|c| c == '\'' || c == '"');
        crate::model::is_canonical_uuid(value).then(|| value.to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_installation_uuid_as_xapi_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory");
        std::fs::write(
            &path,
            "PRIMARY_DISK='/dev/sda'\nINSTALLATION_UUID='9F1C3C7E-0D52-4A57-8E33-0123456789AB'\nCONTROL_DOMAIN_UUID='x'\n",
        )
        .unwrap();
        assert_eq!(
            installation_uuid(&path).as_deref(),
            Some("9f1c3c7e-0d52-4a57-8e33-0123456789ab")
        );
        std::fs::write(&path, "INSTALLATION_UUID='not-a-uuid'\n").unwrap();
        assert_eq!(installation_uuid(&path), None);
        assert_eq!(installation_uuid(&dir.path().join("missing")), None);
    }
}
