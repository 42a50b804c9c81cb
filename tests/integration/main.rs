//! The integration tests: one crate, one module per concept, linked once. Every test runs the
//! built `vgpu-admin` binary against a temporary database, scripts directory and (where a host
//! is needed) the fake xe in `tests/support/fake_xe.rs`; `common` is the harness.

mod bad_input;
mod check_adopt;
mod common;
mod completion;
mod concurrency;
mod confirmation;
mod databases;
mod device_args;
mod device_driver;
mod docs;
mod error_catalog;
mod faults;
mod forged_names;
mod history;
mod hook;
mod hook_independence;
mod interruptions;
mod many_vms;
mod many_vms_adversarial;
mod packaging;
mod pool_hosts;
mod power_and_pending;
mod read_commands;
mod reliability;
mod runaway_scripts;
mod scale;
mod scheduler_controls;
mod scripts;
mod shell;
mod shell_survives;
mod shell_words;
mod store;
mod vm_ids;
mod vm_name;
mod xe_boundary;
mod xe_commands;
