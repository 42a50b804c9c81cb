//! The `vgpu-admin` binary: parse, run, map the outcome to an exit status. What fails at this
//! edge (the run cannot even start) is reported with `anyhow`'s context chain.

use anyhow::{anyhow, Context};

/// Counts allocated bytes, so that a runaway script is stopped by its memory limit.
#[global_allocator]
static ALLOCATOR: vgpu_admin::memory::Counting = vgpu_admin::memory::Counting;

fn main() -> std::process::ExitCode {
    vgpu_admin::interrupt::install();
    match run() {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Runs the command line on a thread with a large stack: a script's deepest allowed nesting
/// never overflows it.
fn run() -> anyhow::Result<u8> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let worker = std::thread::Builder::new()
        .name("vgpu-admin".into())
        .stack_size(vgpu_admin::engine::STACK_SIZE)
        .spawn(move || vgpu_admin::cli::run(args).code())
        .context("cannot start vgpu-admin's worker thread")?;
    worker
        .join()
        .map_err(|_| anyhow!("vgpu-admin's worker thread ended abnormally"))
}
