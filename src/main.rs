//! The `vgpu-admin` binary: parse, run, map the outcome to an exit status.

/// Counts allocated bytes, so that a runaway script is stopped by its memory limit.
#[global_allocator]
static ALLOCATOR: vgpu_admin::memory::Counting = vgpu_admin::memory::Counting;

fn main() -> std::process::ExitCode {
    vgpu_admin::interrupt::install();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The run gets a large stack: a script's deepest allowed nesting never overflows it.
    let run = std::thread::Builder::new()
        .name("vgpu-admin".into())
        .stack_size(vgpu_admin::engine::STACK_SIZE)
        .spawn(move || vgpu_admin::cli::run(args).code());
    let code = match run.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        _ => 1,
    };
    std::process::ExitCode::from(code)
}
