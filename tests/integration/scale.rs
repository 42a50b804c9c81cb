//! Nothing is truncated: 100,000 VMs list completely, as text and as JSON.

use crate::common::{uuid, Env};

#[test]
fn a_hundred_thousand_vms_list_completely() {
    const COUNT: u32 = 100_000;
    let env = Env::new();
    let mut conn = env.sql();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare("INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority) VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        for i in 1..=COUNT {
            let pool = if i % 2 == 0 { "A" } else { "B" };
            insert
                .execute(rusqlite::params![
                    i,
                    uuid(i),
                    format!("vm-{i}"),
                    pool,
                    i % 3
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    drop(conn);

    let text = env.run(&["list-vms"]);
    text.code(0).quiet();
    assert_eq!(
        text.stdout().matches("VM Configuration:\n").count(),
        COUNT as usize
    );
    assert!(text
        .stdout()
        .contains(&format!("  UUID: {}\n  Name: vm-{COUNT}\n", uuid(COUNT))));

    let json = env.run(&["--json", "list-vms", "--pool=A"]).code(0).json();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), (COUNT / 2) as usize);
    assert_eq!(rows.last().unwrap()["vm_id"], COUNT);

    env.run(&["status"])
        .code(5) // no host here
        .stdout_has(&format!("Total: {COUNT} registered VMs"))
        .stdout_has(&format!("    - vm-{COUNT} (ID: {COUNT}, Priority: "));
}
