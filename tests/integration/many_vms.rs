//! Issue 16, changing many VMs at once: selections (`--vm-id=1-7`, `--pool`, `--priority`,
//! `--name`, `--all`), one plan and one confirmation, the VMs to restart stopped, changed and
//! started in waves of `--parallel` at a time; export, plan and apply of a whole configuration.

use crate::common::{uuid, vm, Env};

/// The user's example: virtual users 1 to 20 (vm_ids 1..=20, named `user-NN`), all in pool B
/// with priority medium, the even ones running. Returns their uuids, in vm_id order.
pub fn twenty_users() -> (Env, Vec<String>) {
    let env = Env::new();
    let mut uuids = Vec::new();
    for n in 1..=20u32 {
        let u = uuid(n);
        let args = format!("-device vgpu-stub,pool_id=B,priority=medium,vm_id={n}");
        let power = if n % 2 == 0 { "running" } else { "halted" };
        env.registered(
            vm(&u, &format!("user-{n:02}"), power, Some(&args)),
            i64::from(n),
            "B",
            1,
        );
        uuids.push(u);
    }
    (env, uuids)
}

/// The xe calls of `name` made so far.
fn count(env: &Env, name: &str) -> usize {
    env.call_names().iter().filter(|c| *c == name).count()
}

#[test]
fn issue_16_a_selection_changes_every_vm_it_picks_after_one_confirmation() {
    let (env, uuids) = twenty_users();
    env.clear_calls();
    let out = env.run_with_input(&["set-pool", "--vm-id=1-7", "--pool=A"], "yes\n");
    out.code(0);
    assert_eq!(
        out.stdout().matches("(yes/no)").count(),
        1,
        "one confirmation"
    );
    for (i, u) in uuids.iter().enumerate() {
        let n = i + 1;
        let pool = if n <= 7 { "A" } else { "B" };
        assert_eq!(env.row(u).unwrap().1, pool, "user {n}");
        assert_eq!(
            env.args(u).as_deref(),
            Some(format!("-device vgpu-stub,pool_id={pool},priority=medium,vm_id={n}").as_str())
        );
        let power = if n % 2 == 0 { "running" } else { "halted" };
        assert_eq!(env.power(u), power, "user {n}");
    }
    // Users 2, 4 and 6 were running: each stopped and started once.
    assert_eq!(count(&env, "vm-shutdown"), 3);
    assert_eq!(count(&env, "vm-start"), 3);
    println!("{}", out.stdout());
}
