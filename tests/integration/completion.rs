//! The completion function, called directly, over 10,000 registered VMs: every kind of
//! completion, and no xe call per keystroke (the host list is loaded once, lazily).

use std::cell::Cell;
use std::rc::Rc;
use vgpu_admin::repl::complete::{CommandInfo, Completions};
use vgpu_admin::scripts::Catalog;

fn uuid(n: u32) -> String {
    format!("7d5a8c3e-92f1-4b6a-b0c2-{n:012x}")
}

fn completions(loads: Rc<Cell<u32>>) -> Completions {
    let catalog = Catalog::new(None);
    let commands: Vec<CommandInfo> = catalog.commands().0.iter().map(CommandInfo::from).collect();
    let api = [
        "vms::list",
        "vms::get",
        "vms::register",
        "pools::list",
        "xe::vms",
        "vgpu::merge",
        "ui::confirm",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let c = Completions::new(
        commands,
        api,
        Box::new(move || {
            loads.set(loads.get() + 1);
            vec![(uuid(20_000), "host only vm".to_string())]
        }),
    );
    c.set_registered(
        (1..=10_000)
            .map(|i| (uuid(i), Some(format!("vm-{i:05}"))))
            .collect(),
    );
    c
}

fn words(c: &Completions, line: &str) -> (usize, Vec<String>) {
    let (start, found) = c.complete(line, line.len());
    (start, found.into_iter().map(|c| c.replacement).collect())
}

#[test]
fn completes_commands_options_values_vms_and_api_names() {
    let loads = Rc::new(Cell::new(0));
    let c = completions(loads.clone());
    assert_eq!(
        words(&c, "list-"),
        (0, vec!["list-pools ".to_string(), "list-vms ".to_string()])
    );
    assert!(words(&c, "").1.contains(&"vms::".to_string()));
    assert_eq!(
        words(&c, "set-pool --").1,
        vec![
            "--vm-uuid=",
            "--vm-name=",
            "--pool=",
            "--no-restart ",
            "--vm-id=",
            "--priority=",
            "--name=",
            "--all ",
            "--parallel=",
            "--json ",
            "--dry-run ",
            "--yes "
        ]
    );
    // One VM or a selection: once one is given, the other is not offered.
    assert_eq!(
        words(&c, "set-pool --vm-uuid=x --p").1,
        vec!["--pool=", "--parallel="]
    );
    let after_ids = words(&c, "remove-vm --vm-id=1-7 --").1;
    assert_eq!(
        after_ids[..4],
        ["--no-restart ", "--pool=", "--priority=", "--name="]
    );
    assert!(
        !after_ids.contains(&"--vm-uuid=".to_string())
            && !after_ids.contains(&"--all ".to_string())
    );
    assert_eq!(words(&c, "remove-vm --all --p").1, vec!["--parallel="]);
    assert_eq!(
        words(&c, "list-vms --pool="),
        (16, vec!["A ".to_string(), "B ".to_string()])
    );
    assert_eq!(words(&c, "list-vms --priority h").1, vec!["high "]);
    assert_eq!(words(&c, "set-hook-policy --policy=e").1, vec!["enforce "]);
    assert_eq!(loads.get(), 0, "no xe call until a VM is completed");
    let (start, uuids) = words(&c, "show-vm --vm-uuid=7d5a8c3e-92f1-4b6a-b0c2-00000000270");
    assert_eq!(start, "show-vm --vm-uuid=".len());
    assert_eq!(
        uuids,
        vec![
            format!("{} ", uuid(0x2700)),
            format!("{} ", uuid(0x2701)),
            format!("{} ", uuid(0x2702)),
            format!("{} ", uuid(0x2703)),
            format!("{} ", uuid(0x2704)),
            format!("{} ", uuid(0x2705)),
            format!("{} ", uuid(0x2706)),
            format!("{} ", uuid(0x2707)),
            format!("{} ", uuid(0x2708)),
            format!("{} ", uuid(0x2709)),
            format!("{} ", uuid(0x270a)),
            format!("{} ", uuid(0x270b)),
            format!("{} ", uuid(0x270c)),
            format!("{} ", uuid(0x270d)),
            format!("{} ", uuid(0x270e)),
            format!("{} ", uuid(0x270f))
        ]
    );
    assert_eq!(
        words(&c, "register-vm --vm-name h").1,
        vec!["'host only vm' "]
    );
    assert_eq!(words(&c, "register-vm --vm-name vm-0999").1.len(), 10);
    assert_eq!(words(&c, "let x = vms::re").1, vec!["vms::register("]);
    assert_eq!(
        words(&c, "help set-p").1,
        vec!["set-pool ", "set-priority "]
    );
    assert_eq!(loads.get(), 1, "the host's VMs are listed once and cached");
    assert_eq!(
        c.hint("show-vm", 7).as_deref(),
        Some(" [--vm-uuid <uuid>] [--vm-name <name>]")
    );
}

#[test]
fn every_registered_vm_is_offered() {
    // (benches/completion.rs times this; here only what it returns is checked.)
    let c = completions(Rc::new(Cell::new(0)));
    let (_, found) = words(&c, "show-vm --vm-uuid=7d5a8c3e");
    assert_eq!(found.len(), 10_001);
    assert_eq!(words(&c, "register-vm --vm-name=vm-").1.len(), 10_000);
}
