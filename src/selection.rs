//! A selection of registered VMs, as the commands that change many VMs at once take it:
//! `--vm-id=1-7,9`, `--pool`, `--priority`, `--name='web-*'`, `--all`. Every option given must
//! match (they narrow each other); `--all` is every VM.

use crate::model::{ModelError, NameGlob, Pool, Priority, VmIdSet};

/// The VMs a run over many VMs is about.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--vm-id`: vm_ids and ranges.
    pub vm_ids: Option<VmIdSet>,
    /// `--pool`.
    pub pool: Option<Pool>,
    /// `--priority`.
    pub priority: Option<Priority>,
    /// `--name`: a pattern on the name-label.
    pub name: Option<NameGlob>,
    /// `--all`.
    pub all: bool,
    /// The options as given, for messages (`--vm-id=1-7 --pool=A`).
    given: Vec<String>,
}

impl Selection {
    /// Builds a selection from `(option, value)` pairs (`("vm-id", "1-7")`, `("all", "")`),
    /// each checked by the model. An unknown option is refused.
    pub fn parse<'a>(
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Selection, ModelError> {
        let mut sel = Selection::default();
        for (option, value) in options {
            match option {
                "vm-id" => sel.vm_ids = Some(VmIdSet::parse(value)?),
                "pool" => sel.pool = Some(Pool::parse(value)?),
                "priority" => sel.priority = Some(Priority::parse(value)?),
                "name" => sel.name = Some(NameGlob::parse(value)?),
                "all" => sel.all = true,
                other => {
                    return Err(ModelError::SelectionOption(crate::model::shown(other)));
                }
            }
            sel.given.push(if option == "all" {
                "--all".to_string()
            } else {
                format!("--{option}={}", crate::model::shown(value))
            });
        }
        Ok(sel)
    }

    /// Whether nothing was given (no selection at all).
    pub fn is_empty(&self) -> bool {
        self.given.is_empty()
    }

    /// Whether a VM with these values is selected; `name` is its name-label (as the pool lists
    /// it, or as stored when it is not listed).
    pub fn matches(&self, vm_id: i64, pool: &str, priority: i64, name: Option<&str>) -> bool {
        if self.all {
            return true;
        }
        self.vm_ids.as_ref().is_none_or(|s| s.contains(vm_id))
            && self.pool.is_none_or(|p| p.as_str() == pool)
            && self.priority.is_none_or(|p| p.level() == priority)
            && self
                .name
                .as_ref()
                .is_none_or(|g| name.is_some_and(|n| g.matches(n)))
    }

    /// The selection as typed: `--vm-id=1-7 --pool=A`.
    pub fn describe(&self) -> String {
        self.given.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::Selection;

    #[test]
    fn options_narrow_each_other_and_all_is_everything() {
        let sel = Selection::parse([("vm-id", "1-7"), ("pool", "a"), ("name", "web-*")]).unwrap();
        assert_eq!(sel.describe(), "--vm-id=1-7 --pool=a --name=web-*");
        assert!(sel.matches(3, "A", 1, Some("web-3")));
        assert!(!sel.matches(8, "A", 1, Some("web-8")));
        assert!(!sel.matches(3, "B", 1, Some("web-3")));
        assert!(!sel.matches(3, "A", 1, Some("db-3")));
        assert!(!sel.matches(3, "A", 1, None));
        let all = Selection::parse([("all", "")]).unwrap();
        assert!(all.matches(99, "B", 0, None));
        assert!(Selection::parse([("vm-id", "7-1")]).is_err());
        assert!(Selection::parse([("colour", "red")]).is_err());
    }
}
