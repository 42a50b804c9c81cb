//! The `vgpu-admin` binary: parse, run, map the outcome to an exit status.

fn main() -> std::process::ExitCode {
    let status = vgpu_admin::cli::run(std::env::args_os().collect());
    std::process::ExitCode::from(status.code())
}
