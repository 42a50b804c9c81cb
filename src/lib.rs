//! vgpu-admin: configuration and management of the vGPU stub device on XCP-ng hosts.
//!
//! The library is the embeddable host: open a [`store::Store`], build a [`Host`] (a Rhai engine
//! with the `vms::`, `pools::` and `ui::` API), and run a command script or an admin's script.
//! The `vgpu-admin` binary is a thin layer over [`cli::run`].
//!
//! ```no_run
//! use vgpu_admin::{Host, HostConfig};
//! let host = Host::new(HostConfig::new("/tmp/vgpu.db"));
//! let command = host.catalog().command("list-vms").unwrap().unwrap();
//! host.run_command(&command.script, vec![], &[]).unwrap();
//! ```

pub mod change;
pub mod cli;
pub mod config_file;
pub mod engine;
pub mod exit;
pub mod hook;
pub mod input;
pub mod install;
pub mod interrupt;
pub mod inventory;
pub mod mediator;
pub mod memory;
pub mod model;
pub mod options;
pub mod origin;
pub mod output;
pub mod pool_record;
pub mod process;
pub mod qemu;
pub mod repl;
pub mod scripts;
pub mod selection;
pub mod store;
pub mod template;
pub mod vgpu;
pub mod xe;

pub use engine::{Host, HostConfig, Limits};
pub use exit::{Failure, Status};
