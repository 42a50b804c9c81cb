//! Shell completion latency over 10,000 registered VMs (run by `benches/bench.py`, or
//! `cargo bench --bench completion`). Prints the median time of one Tab for each kind.

use std::time::Instant;
use vgpu_admin::repl::complete::{CommandInfo, Completions};
use vgpu_admin::scripts::Catalog;

fn main() {
    let commands: Vec<CommandInfo> = Catalog::new(None)
        .commands()
        .0
        .iter()
        .map(CommandInfo::from)
        .collect();
    let api = vec!["vms::list".to_string(), "vms::register".to_string()];
    let c = Completions::new(commands, api, Box::new(Vec::new));
    c.set_registered(
        (1..=10_000u32)
            .map(|i| {
                (
                    format!("7d5a8c3e-92f1-4b6a-b0c2-{i:012x}"),
                    Some(format!("vm-{i:05}")),
                )
            })
            .collect(),
    );
    println!("| completion over 10,000 VMs | median per Tab (µs) | candidates |");
    println!("|---|---:|---:|");
    for line in [
        "list-",
        "set-pool --",
        "list-vms --pool=",
        "show-vm --vm-uuid=7d5a8c3e-92f1-4b6a-b0c2-00000000",
        "show-vm --vm-uuid=7d5a8c3e",
        "register-vm --vm-name=vm-0",
    ] {
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..51 {
            let start = Instant::now();
            let (_, found) = c.complete(line, line.len());
            times.push(start.elapsed());
            count = found.len();
        }
        times.sort();
        println!(
            "| `{line}` | {:.0} | {count} |",
            times[times.len() / 2].as_secs_f64() * 1e6
        );
    }
}
