//! The validated vocabulary of vgpu-admin: pools, priorities, VM uuids, vm-ids and VM names.
//!
//! Every value that comes from an admin (command line, script, shell) is parsed here, in one place.
//! A rejection names the bad value and says what is allowed; the CLI turns it into exit status 2.

use std::fmt;

/// The largest vm_id the vGPU stub accepts (a signed 32-bit integer).
pub const MAX_VM_ID: i64 = 2_147_483_647;

/// The longest VM name (in characters) that is accepted.
pub const MAX_NAME_CHARS: usize = 255;

/// A value that failed validation. The message names the value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A pool other than A or B.
    #[error("invalid pool '{0}': expected A or B")]
    Pool(String),
    /// A priority other than low/medium/high or 0/1/2.
    #[error("invalid priority '{0}': expected low, medium or high (or 0, 1, 2)")]
    Priority(String),
    /// A VM uuid that is not in the canonical 8-4-4-4-12 hexadecimal form.
    #[error(
        "invalid VM uuid '{0}': expected 8-4-4-4-12 hexadecimal digits, \
         like 7d5a8c3e-92f1-4b6a-b0c2-d3e4f5a6b7c8"
    )]
    Uuid(String),
    /// A vm-id that is not a whole number in 1..=2147483647.
    #[error("invalid vm-id '{0}': expected a whole number from 1 to 2147483647")]
    VmId(String),
    /// A setting that does not exist.
    #[error("unknown setting '{0}': expected hook_policy, hook_time_limit or device_driver")]
    UnknownSetting(String),
    /// A setting value that is not allowed.
    #[error("invalid value '{value}' for {key}: expected {expected}")]
    Setting {
        /// The setting.
        key: &'static str,
        /// The offending value, shown safely.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// A VM name that is empty, too long or holds control characters.
    #[error("invalid VM name '{value}': {reason}")]
    Name {
        /// The offending name, shown safely.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A scheduler weight outside 1..=100.
    #[error("invalid weight '{0}': expected a whole number from 1 to 100")]
    Weight(String),
    /// A rate or queue limit that is not a whole number from 0 to 4294967295.
    #[error("invalid limit '{0}': expected a whole number from 0 (unlimited) to 4294967295")]
    Limit(String),
    /// A time that is not `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS`.
    #[error(
        "invalid time '{0}': expected YYYY-MM-DD, YYYY-MM-DD HH:MM or YYYY-MM-DD HH:MM:SS (UTC)"
    )]
    Since(String),
    /// A list of vm_ids and ranges that is not one (`1-7,9,12-14`).
    #[error(
        "invalid vm-id list '{value}': {reason} (expected vm_ids and ranges like 1-7,9,12-14, each from 1 to 2147483647)"
    )]
    VmIdSet {
        /// The value as given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A selection key that is not one.
    #[error("unknown selection option '{0}': expected vm-id, pool, priority, name or all")]
    SelectionOption(String),
    /// A name pattern that is not one.
    #[error("invalid name pattern '{value}': {reason}")]
    NameGlob {
        /// The value as given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A host of the pool named in a way no host can be.
    #[error(
        "invalid host '{0}': expected a host's name-label (1 to 255 characters, no control \
         characters), its uuid, or 'this'"
    )]
    Host(String),
}

/// Shows an admin-supplied value on one line: control characters escaped, long values shortened.
pub fn shown(value: &str) -> String {
    const LIMIT: usize = 60;
    let escaped: String = value.escape_debug().collect();
    if escaped.chars().count() > LIMIT {
        let head: String = escaped.chars().take(LIMIT).collect();
        format!("{head}... ({} characters)", value.chars().count())
    } else {
        escaped
    }
}

/// Shows text that came from outside (a VM's name-label, device-model-args, xe's messages) on a
/// terminal safely: every control character (newline, escape, ...) and every invisible
/// formatting character (bidirectional overrides and isolates, zero-width characters) is written
/// as an escape (`\n`, `\u{1b}`, `\u{202e}`), so that the text stays on its line, in its order,
/// and cannot drive the terminal.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(unprintable) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unprintable(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A control character, or a formatting character that changes how the text around it is shown
/// without showing itself: the Arabic letter mark, zero-width spaces and joiners, the
/// left-to-right/right-to-left marks, embeddings, overrides and isolates, the byte-order mark.
pub fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// Deserialises a model value from the text (or, for numbers, the integer) a script gives,
/// checked by its parser: the same rules as on the command line.
macro_rules! deserialize_by_parse {
    ($t:ty, $parse:expr) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl serde::de::Visitor<'_> for Visit {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(stringify!($t))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        $parse(v).map_err(E::custom)
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$t, E> {
                        $parse(&v.to_string()).map_err(E::custom)
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$t, E> {
                        $parse(&v.to_string()).map_err(E::custom)
                    }
                    fn visit_char<E: serde::de::Error>(self, v: char) -> Result<$t, E> {
                        $parse(&v.to_string()).map_err(E::custom)
                    }
                }
                d.deserialize_any(Visit)
            }
        }
    };
}

deserialize_by_parse!(Pool, Pool::parse);
deserialize_by_parse!(Priority, Priority::parse);
deserialize_by_parse!(VmUuid, VmUuid::parse);
deserialize_by_parse!(VmId, VmId::parse);
deserialize_by_parse!(VmName, VmName::parse);
deserialize_by_parse!(Since, Since::parse);
deserialize_by_parse!(Weight, Weight::parse);
deserialize_by_parse!(Limit, Limit::parse);

/// A vGPU pool: A or B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Pool {
    /// Pool A (the default).
    #[default]
    A,
    /// Pool B.
    B,
}

impl Pool {
    /// Both pools, in display order.
    pub const ALL: [Pool; 2] = [Pool::A, Pool::B];

    /// Parses `A`/`B` in any case.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        match input {
            "A" | "a" => Ok(Pool::A),
            "B" | "b" => Ok(Pool::B),
            _ => Err(ModelError::Pool(shown(input))),
        }
    }

    /// The one-letter id stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::A => "A",
            Pool::B => "B",
        }
    }

    /// The pool written exactly (upper case), as the database and the device have it.
    pub fn exact(text: &str) -> Option<Pool> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The pool a device without `pool_id` gets (and a registration without one).
    pub const DEFAULT: Pool = Pool::A;
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scheduling priority; stored as 0/1/2, shown and written to the stub device as a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// low (0)
    Low,
    /// medium (1), the default
    #[default]
    Medium,
    /// high (2)
    High,
}

impl Priority {
    /// All priorities, lowest first.
    pub const ALL: [Priority; 3] = [Priority::Low, Priority::Medium, Priority::High];

    /// Parses `low|medium|high` in any case, or `0|1|2`.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        match input.to_ascii_lowercase().as_str() {
            "low" | "0" => Ok(Priority::Low),
            "medium" | "1" => Ok(Priority::Medium),
            "high" | "2" => Ok(Priority::High),
            _ => Err(ModelError::Priority(shown(input))),
        }
    }

    /// The priority stored as `level` (0, 1, 2) in the database, if it is one.
    pub fn from_level(level: i64) -> Option<Self> {
        match level {
            0 => Some(Priority::Low),
            1 => Some(Priority::Medium),
            2 => Some(Priority::High),
            _ => None,
        }
    }

    /// The number stored in the database.
    pub fn level(self) -> i64 {
        self as i64
    }

    /// The priority written exactly as a word, as the device accepts it (no digit, lower case).
    pub fn exact_word(text: &str) -> Option<Priority> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The priority a device without `priority` gets.
    pub const DEFAULT: Priority = Priority::Medium;

    /// The word shown to admins and written to the stub device.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A VM uuid in canonical form: 8-4-4-4-12 hexadecimal digits, lowercase.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmUuid(String);

impl VmUuid {
    /// Parses a uuid in any case and stores it lowercase.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        if is_canonical_uuid(input) {
            Ok(VmUuid(input.to_ascii_lowercase()))
        } else {
            Err(ModelError::Uuid(shown(input)))
        }
    }

    /// The lowercase text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VmUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when `s` is 8-4-4-4-12 hexadecimal digits (any case).
pub fn is_canonical_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The vGPU vm_id of a VM: a whole number from 1 to 2147483647.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmId(i64);

impl VmId {
    /// Parses decimal digits only (no sign, no spaces, no suffix).
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        let bad = || ModelError::VmId(shown(input));
        if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let value: i64 = input.parse().map_err(|_| bad())?;
        Self::new(value).ok_or_else(bad)
    }

    /// Accepts a number already parsed (from a script), if it is in range.
    pub fn new(value: i64) -> Option<Self> {
        (1..=MAX_VM_ID).contains(&value).then_some(VmId(value))
    }

    /// Like [`VmId::new`], with the error an admin sees.
    pub fn from_int(value: i64) -> Result<Self, ModelError> {
        Self::new(value).ok_or_else(|| ModelError::VmId(value.to_string()))
    }

    /// The number.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A set of vm_ids as an admin selects them: `7`, `1-7`, `1-7,9,12-14` (ranges inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmIdSet(Vec<(i64, i64)>);

impl VmIdSet {
    /// Parses a comma-separated list of vm_ids and `LO-HI` ranges (spaces around the parts
    /// allowed; a range runs upwards).
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::VmIdSet {
            value: shown(input),
            reason,
        };
        let id = |part: &str| {
            VmId::parse(part.trim())
                .map(VmId::get)
                .map_err(|_| bad(format!("'{}' is not a vm_id", shown(part.trim()))))
        };
        let mut ranges = Vec::new();
        for part in input.split(',') {
            if part.trim().is_empty() {
                return Err(bad("an empty part".into()));
            }
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (id(lo)?, id(hi)?),
                None => {
                    let one = id(part)?;
                    (one, one)
                }
            };
            if lo > hi {
                return Err(bad(format!("the range {lo}-{hi} runs downwards")));
            }
            ranges.push((lo, hi));
        }
        Ok(VmIdSet(ranges))
    }

    /// Whether `vm_id` is in the set.
    pub fn contains(&self, vm_id: i64) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&vm_id))
    }

    /// The ranges, as given: `(lo, hi)`, inclusive.
    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.0
    }
}

/// A shell-style pattern on a VM's name-label: `*` any text, `?` one character, `[...]` one of
/// a set (`[!...]` none of it). Matched against the whole name, case-sensitively.
#[derive(Debug, Clone)]
pub struct NameGlob(glob::Pattern);

impl NameGlob {
    /// Parses a pattern (no control characters, at most 255 characters).
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::NameGlob {
            value: shown(input),
            reason,
        };
        if input.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if input.chars().count() > 255 {
            return Err(bad("longer than 255 characters".into()));
        }
        if input.chars().any(char::is_control) {
            return Err(bad("it holds a control character".into()));
        }
        glob::Pattern::new(input)
            .map(NameGlob)
            .map_err(|e| bad(e.msg.to_string()))
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        self.0.matches_with(
            name,
            glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: false,
                require_literal_leading_dot: false,
            },
        )
    }
}

/// A VM's scheduler weight for the GPU mediator: its share of GPU time, 1 to 100 (50 when
/// never set, as the mediator's column default says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Weight(i64);

impl Weight {
    /// The mediator's default.
    pub const DEFAULT: i64 = 50;

    /// Parses a weight: a plain decimal 1..=100.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        let text = input.trim();
        match text.parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) && text.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Weight(n))
            }
            _ => Err(ModelError::Weight(shown(input))),
        }
    }

    /// The number.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A limit the GPU mediator enforces per VM (jobs per second, queued jobs, or an error count):
/// 0 to 4294967295 (it reads them as unsigned 32-bit numbers); 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Limit(i64);

impl Limit {
    /// Parses a limit: a plain decimal 0..=4294967295.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        let text = input.trim();
        match text.parse::<i64>() {
            Ok(n)
                if (0..=i64::from(u32::MAX)).contains(&n)
                    && text.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Ok(Limit(n))
            }
            _ => Err(ModelError::Limit(shown(input))),
        }
    }

    /// The number (0: unlimited).
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A point in time to read the history from: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or
/// `YYYY-MM-DD HH:MM:SS` (UTC, as the database stores times; `T` may stand for the space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since(String);

impl Since {
    /// Parses a time, checking each part's range; kept as `YYYY-MM-DD HH:MM:SS`.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        let bad = || ModelError::Since(shown(input));
        let text = input.trim().replacen('T', " ", 1);
        let (date, time) = text.split_once(' ').unwrap_or((&text, "00:00:00"));
        let number = |part: &str, len: usize, range: std::ops::RangeInclusive<u32>| {
            (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u32>().ok())
                .flatten()
                .filter(|n| range.contains(n))
        };
        let d: Vec<&str> = date.split('-').collect();
        let t: Vec<&str> = time.split(':').collect();
        let ok = d.len() == 3
            && number(d[0], 4, 1970..=9999).is_some()
            && number(d[1], 2, 1..=12).is_some()
            && number(d[2], 2, 1..=31).is_some()
            && (t.len() == 2 || t.len() == 3)
            && number(t[0], 2, 0..=23).is_some()
            && number(t[1], 2, 0..=59).is_some()
            && (t.len() == 2 || number(t[2], 2, 0..=59).is_some());
        if !ok {
            return Err(bad());
        }
        let seconds = if t.len() == 3 { t[2] } else { "00" };
        Ok(Since(format!("{date} {}:{}:{seconds}", t[0], t[1])))
    }

    /// The time as the database compares it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host of the pool as an admin names it: `this` (the host vgpu-admin runs on), its uuid, or
/// its name-label (1 to 255 characters, no control characters). Which host it is, if any, is
/// for the pool to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRef(String);

impl HostRef {
    /// Parses a host reference; a uuid is lowercased.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        if input == "this" {
            return Ok(HostRef(input.to_string()));
        }
        if let Ok(uuid) = VmUuid::parse(input) {
            return Ok(HostRef(uuid.to_string()));
        }
        match VmName::parse(input) {
            Ok(name) => Ok(HostRef(name.to_string())),
            Err(_) => Err(ModelError::Host(shown(input))),
        }
    }
}

impl fmt::Display for HostRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A VM's name-label as stored in the database: 1 to 255 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmName(String);

impl VmName {
    /// Parses a name; commas, quotes, spaces, unicode and shell metacharacters are all fine.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        let reason = if input.is_empty() {
            Some("it is empty")
        } else if input.chars().count() > MAX_NAME_CHARS {
            Some("it is longer than 255 characters")
        } else if input.chars().any(char::is_control) {
            Some("it contains a control character (newline, tab, ...)")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ModelError::Name {
                value: shown(input),
                reason,
            }),
            None => Ok(VmName(input.to_string())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl VmName {
    /// The name to store for a VM whose name-label is `label`: control characters escaped (see
    /// [`printable`]) and cut to [`MAX_NAME_CHARS`] characters, so that any VM can be registered.
    /// `None` for an empty label. The flag is true when the stored name differs from the label.
    pub fn from_label(label: &str) -> (Option<VmName>, bool) {
        let escaped = printable(label);
        let stored: String = escaped.chars().take(MAX_NAME_CHARS).collect();
        let changed = stored != label;
        (VmName::parse(&stored).ok(), changed)
    }
}

/// The name of the vGPU device in QEMU. A site's QEMU has one of the two; vgpu-admin recognises
/// both in existing values and writes the site's (see the `device_driver` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// `vgpu-stub`, the original name and the default.
    Stub,
    /// `vgpu-cuda`, the name of the device since February 2026.
    Cuda,
}

impl Driver {
    /// Both names, the default first.
    pub const ALL: [Driver; 2] = [Driver::Stub, Driver::Cuda];

    /// The driver written when the site has not chosen one.
    pub const DEFAULT: Driver = Driver::Stub;

    /// Parses an admin's choice (any case).
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(input))
            .ok_or_else(|| ModelError::Setting {
                key: "device_driver",
                value: shown(input),
                expected: "vgpu-stub or vgpu-cuda",
            })
    }

    /// The driver a `-device` argument names, compared exactly as QEMU compares names.
    pub fn from_device_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The QEMU driver name.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Stub => "vgpu-stub",
            Driver::Cuda => "vgpu-cuda",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A VM's power state as xe reports it. Only these four exist; anything else is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    /// Not running: a change applies at its next start.
    Halted,
    /// Running: a change needs a restart.
    Running,
    /// Paused: its QEMU process lives on; a change waits for a restart.
    Paused,
    /// Suspended: its saved device state must not change underneath it.
    Suspended,
}

impl PowerState {
    /// Parses xe's lowercase word.
    pub fn parse(input: &str) -> Option<Self> {
        Some(match input {
            "halted" => PowerState::Halted,
            "running" => PowerState::Running,
            "paused" => PowerState::Paused,
            "suspended" => PowerState::Suspended,
            _ => return None,
        })
    }
}

/// What the vm-pre-start hook does when a VM's args differ from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPolicy {
    /// Correct the args for the next boot, log it, let the start go on (hook exit 1).
    Warn,
    /// Correct the args and stop this start (hook exit 2), so the next start boots right.
    Enforce,
}

impl HookPolicy {
    /// Parses `warn` or `enforce` (any case).
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        match input.to_ascii_lowercase().as_str() {
            "warn" => Ok(HookPolicy::Warn),
            "enforce" => Ok(HookPolicy::Enforce),
            _ => Err(ModelError::Setting {
                key: "hook_policy",
                value: shown(input),
                expected: "warn or enforce",
            }),
        }
    }

    /// The word stored.
    pub fn as_str(self) -> &'static str {
        match self {
            HookPolicy::Warn => "warn",
            HookPolicy::Enforce => "enforce",
        }
    }

    /// The hook's answer to xenopsd for a failure or a correction under this policy.
    pub fn failure_status(self) -> crate::exit::HookExit {
        match self {
            HookPolicy::Warn => crate::exit::HookExit::Logged,
            HookPolicy::Enforce => crate::exit::HookExit::Abort,
        }
    }
}

/// The longest time limit the hook may be given, in seconds.
pub const MAX_HOOK_TIME_LIMIT: u64 = 300;

/// Validates a site setting and returns its stored form.
pub fn validate_setting(key: &str, value: &str) -> Result<String, ModelError> {
    match key {
        "hook_policy" => HookPolicy::parse(value).map(|p| p.as_str().to_string()),
        "device_driver" => Driver::parse(value).map(|d| d.as_str().to_string()),
        "hook_time_limit" => value
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_HOOK_TIME_LIMIT).contains(n))
            .map(|n| n.to_string())
            .ok_or_else(|| ModelError::Setting {
                key: "hook_time_limit",
                value: shown(value),
                expected: "a whole number of seconds from 1 to 300",
            }),
        other => Err(ModelError::UnknownSetting(shown(other))),
    }
}

/// The vGPU settings of one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// The pool the VM belongs to.
    pub pool: Pool,
    /// Its scheduling priority.
    pub priority: Priority,
    /// Its vGPU vm_id.
    pub vm_id: VmId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_controls_and_invisible_formatting() {
        assert_eq!(printable("web-01"), "web-01");
        assert_eq!(printable("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(printable("user\u{202e}10-resu"), "user\\u{202e}10-resu");
        assert_eq!(
            printable("x\u{200b}y\u{2066}z\u{feff}"),
            "x\\u{200b}y\\u{2066}z\\u{feff}"
        );
        assert_eq!(printable("Ünïcødé 名前"), "Ünïcødé 名前");
    }

    #[test]
    fn vm_id_sets_take_ids_ranges_and_lists() {
        let set = VmIdSet::parse("1-7, 9 ,12-14").unwrap();
        let members: Vec<i64> = (0..20).filter(|n| set.contains(*n)).collect();
        assert_eq!(members, vec![1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14]);
        assert!(VmIdSet::parse("7").unwrap().contains(7));
        for (bad, why) in [
            ("", "an empty part"),
            ("1-7,", "an empty part"),
            ("7-1", "runs downwards"),
            ("0", "'0' is not a vm_id"),
            ("1-x", "'x' is not a vm_id"),
            ("1--3", "'-3' is not a vm_id"),
            ("2147483648", "is not a vm_id"),
            ("-3", "'' is not a vm_id"),
        ] {
            let err = VmIdSet::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn name_globs_match_whole_names() {
        let web = NameGlob::parse("web-*").unwrap();
        assert!(web.matches("web-01"));
        assert!(web.matches("web-"));
        assert!(!web.matches("a web-01"));
        assert!(!web.matches("Web-01"));
        assert!(NameGlob::parse("render-0[1-3]")
            .unwrap()
            .matches("render-02"));
        assert!(!NameGlob::parse("render-0[!1-3]")
            .unwrap()
            .matches("render-02"));
        assert!(NameGlob::parse("db, \"main\" ?(x)")
            .unwrap()
            .matches("db, \"main\" $(x)"));
        for bad in ["", "a\nb", "[unclosed"] {
            assert!(NameGlob::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pools_parse_in_any_case_and_reject_others() {
        assert_eq!(Pool::parse("a"), Ok(Pool::A));
        assert_eq!(Pool::parse("B"), Ok(Pool::B));
        for bad in ["C", "Apple", "", " A", "AB"] {
            let err = Pool::parse(bad).unwrap_err().to_string();
            assert!(err.contains("expected A or B"), "{err}");
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn priorities_accept_words_and_digits() {
        assert_eq!(Priority::parse("HIGH"), Ok(Priority::High));
        assert_eq!(Priority::parse("0"), Ok(Priority::Low));
        assert_eq!(Priority::parse("Medium"), Ok(Priority::Medium));
        assert!(Priority::parse("3").is_err());
        assert!(Priority::parse("urgent").is_err());
        assert_eq!(Priority::High.level(), 2);
    }

    #[test]
    fn uuids_are_canonical_and_lowercased() {
        let u = VmUuid::parse("7D5A8C3E-92F1-4B6A-B0C2-D3E4F5A6B7C8").unwrap();
        assert_eq!(u.as_str(), "7d5a8c3e-92f1-4b6a-b0c2-d3e4f5a6b7c8");
        for bad in [
            "not-a-uuid",
            "",
            "7d5a8c3e92f14b6ab0c2d3e4f5a6b7c8",
            "7d5a8c3e-92f1-4b6a-b0c2-d3e4f5a6b7c;",
            "$(touch /tmp/x)",
            "7d5a8c3e-92f1-4b6a-b0c2-d3e4f5a6b7c8 ",
        ] {
            assert!(VmUuid::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vm_ids_are_strictly_decimal_and_in_range() {
        assert_eq!(VmId::parse("7").unwrap().get(), 7);
        assert_eq!(VmId::parse("2147483647").unwrap().get(), MAX_VM_ID);
        for bad in [
            "abc",
            "12abc",
            "-5",
            "0",
            "2147483648",
            "",
            "+3",
            " 3",
            "99999999999999999999",
        ] {
            assert!(VmId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_refuse_control_characters_and_overlong_values() {
        assert!(VmName::parse("web, \"prod\" $(touch x); rm -rf / ünï").is_ok());
        assert!(VmName::parse("a\nb").is_err());
        assert!(VmName::parse("").is_err());
        assert!(VmName::parse(&"x".repeat(256)).is_err());
        assert!(VmName::parse(&"é".repeat(255)).is_ok());
    }

    #[test]
    fn shown_values_stay_on_one_line() {
        assert_eq!(shown("a\nb"), "a\\nb");
        let long = shown(&"x".repeat(10_000));
        assert!(long.len() < 100 && long.contains("10000 characters"));
    }
}
