//! One `-device` argument as QEMU reads it (`vgpu-cuda,addr=5,pool_id=A,priority=high,vm_id=7`):
//! comma-separated parts, `,,` standing for a literal comma, the first part naming the driver
//! (bare, or as `driver=NAME`), a part without `=` meaning `part=on`, and the last of repeated
//! keys winning. Parts are kept as written, so an edit changes only the parts it means to.

use crate::model::Driver;

/// The properties vgpu-admin owns on the vGPU device, in the order it writes them.
pub const OWN_KEYS: [&str; 3] = ["pool_id", "priority", "vm_id"];

/// A `-device` argument split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The parts as written (`,,` escapes kept), without the separating commas.
    parts: Vec<String>,
}

impl DeviceSpec {
    /// Splits `arg` at every comma that is not part of a `,,` pair.
    pub fn parse(arg: &str) -> DeviceSpec {
        let mut parts = vec![String::new()];
        let mut chars = arg.chars().peekable();
        while let Some(c) = chars.next() {
            if c == ',' {
                if chars.peek() == Some(&',') {
                    chars.next();
                    if let Some(last) = parts.last_mut() {
                        last.push_str(",,");
                    }
                } else {
                    parts.push(String::new());
                }
            } else if let Some(last) = parts.last_mut() {
                last.push(c);
            }
        }
        DeviceSpec { parts }
    }

    /// The key and value of part `i` (`,,` unescaped); the first part without `=` is the driver.
    fn pair(&self, i: usize) -> (String, String) {
        let part = &self.parts[i];
        match part.split_once('=') {
            Some((k, v)) => (k.replace(",,", ","), v.replace(",,", ",")),
            None if i == 0 => ("driver".into(), part.replace(",,", ",")),
            None => (part.replace(",,", ","), "on".into()),
        }
    }

    /// The value QEMU uses for `key`: the last one given.
    pub fn get(&self, key: &str) -> Option<String> {
        (0..self.parts.len())
            .rev()
            .map(|i| self.pair(i))
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The driver name this argument asks QEMU for.
    pub fn driver_name(&self) -> String {
        self.get("driver").unwrap_or_default()
    }

    /// The vGPU driver it names, if it names one (exact, as QEMU compares names).
    pub fn vgpu_driver(&self) -> Option<Driver> {
        Driver::from_device_name(&self.driver_name())
    }

    /// Sets `key` to `value` in place: the first part with that key gets the value, later ones
    /// are dropped; a key not present is appended.
    pub fn set(&mut self, key: &str, value: &str) {
        let indices: Vec<usize> = (0..self.parts.len())
            .filter(|&i| self.pair(i).0 == key)
            .collect();
        let escaped = value.replace(',', ",,");
        let Some((&first, rest)) = indices.split_first() else {
            self.parts.push(format!("{key}={escaped}"));
            return;
        };
        self.parts[first] = if first == 0 && !self.parts[0].contains('=') {
            escaped // the bare driver name
        } else {
            format!("{key}={escaped}")
        };
        for &i in rest.iter().rev() {
            self.parts.remove(i);
        }
    }

    /// The argument as QEMU would be given it.
    pub fn render(&self) -> String {
        self.parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_driver_and_properties_as_qemu_does() {
        let d = DeviceSpec::parse("vgpu-cuda,addr=5,id=a,,b,pool_id=A,pool_id=B,prefer_bar1_htod");
        assert_eq!(d.vgpu_driver(), Some(Driver::Cuda));
        assert_eq!(d.get("id").as_deref(), Some("a,b"));
        assert_eq!(d.get("pool_id").as_deref(), Some("B"), "the last one wins");
        assert_eq!(d.get("prefer_bar1_htod").as_deref(), Some("on"));
        assert_eq!(d.get("vm_id"), None);
        let named = DeviceSpec::parse("driver=vgpu-stub,vm_id=3");
        assert_eq!(named.vgpu_driver(), Some(Driver::Stub));
        assert_eq!(DeviceSpec::parse("e1000,netdev=n0").vgpu_driver(), None);
        assert_eq!(DeviceSpec::parse("VGPU-CUDA").vgpu_driver(), None);
    }

    #[test]
    fn edits_in_place_and_keeps_other_parts_as_written() {
        let mut d = DeviceSpec::parse("vgpu-cuda,addr=5,pool_id=A,romfile=a,,b,pool_id=B,x");
        d.set("pool_id", "A");
        d.set("priority", "high");
        d.set("vm_id", "7");
        assert_eq!(
            d.render(),
            "vgpu-cuda,addr=5,pool_id=A,romfile=a,,b,x,priority=high,vm_id=7"
        );
        let mut named = DeviceSpec::parse("driver=vgpu-stub,vm_id=1");
        named.set("driver", "vgpu-cuda");
        assert_eq!(named.render(), "driver=vgpu-cuda,vm_id=1");
        let mut bare = DeviceSpec::parse("vgpu-stub");
        bare.set("driver", "vgpu-cuda");
        assert_eq!(bare.render(), "vgpu-cuda");
    }
}
