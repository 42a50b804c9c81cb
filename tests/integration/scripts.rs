//! Admin scripts: `run` with the host API, limits on runaway scripts, error locations, the admin
//! directory overriding and adding commands and stdlib modules, `api` and `commands`.

use crate::common::{uuid, Env};

#[test]
fn run_gives_scripts_the_api_and_their_arguments() {
    let env = Env::new();
    env.seed(&[
        (4, &uuid(4), Some("web"), "A", 2),
        (9, &uuid(9), None, "B", 0),
    ]);
    let script = env.file(
        "report.rhai",
        r#"
        // Print each VM of the pool given as the first argument.
        let pool = ARGS[0];
        for vm in vms::list(#{ pool: pool }) {
            print(`${vm.vm_id} ${vm.vm_uuid} ${vm.priority}`);
        }
        print(`args: ${ARGS.len()} ${ARGS[1]}; total ${vms::count()}; next ${vms::next_vm_id()}`);
        "#,
    );
    env.run(&["run", script.to_str().unwrap(), "B", "--flag-like"])
        .code(0)
        .quiet()
        .stdout_is(&format!(
            "9 {} low\nargs: 2 --flag-like; total 2; next 10\n",
            uuid(9)
        ));
}

#[test]
fn scripts_register_update_and_remove_through_the_api() {
    let env = Env::new();
    let script = env.file(
        "change.rhai",
        &format!(
            r#"
            let a = vms::register(#{{ uuid: "{a}", name: "alpha" }});
            let b = vms::register(#{{ uuid: "{b}", pool: "b", priority: "HIGH", vm_id: 40 }});
            let c = vms::update("{a}", #{{ priority: 0, vm_id: 41 }});
            vms::remove("{b}");
            print(`${{a.vm_id}} ${{a.pool_id}} ${{a.priority}} | ${{b.vm_id}} ${{b.pool_id}} ${{b.priority}} | ${{c.vm_id}} ${{c.priority}}`);
            "#,
            a = uuid(1).to_uppercase(),
            b = uuid(2)
        ),
    );
    env.run(&["run", script.to_str().unwrap()])
        .code(0)
        .stdout_is("1 A medium | 40 B high | 41 low\n");
    let rows: Vec<(i64, String, String, i64)> = env
        .sql()
        .prepare("SELECT vm_id, vm_uuid, pool_id, priority FROM vms")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec![(41, uuid(1), "A".to_string(), 0)]);
}

#[test]
fn a_transaction_that_throws_keeps_nothing() {
    let env = Env::new();
    let script = env.file(
        "batch.rhai",
        &format!(
            r#"
            vms::transaction(|| {{
                vms::register(#{{ uuid: "{}" }});
                vms::register(#{{ uuid: "{}" }});
                throw "changed my mind";
            }});
            "#,
            uuid(1),
            uuid(2)
        ),
    );
    env.run(&["run", script.to_str().unwrap()])
        .code(1)
        .stderr_has("changed my mind");
    assert_eq!(env.vm_count(), 0);
}

#[test]
fn an_infinite_loop_is_stopped_by_the_operation_limit() {
    let env = Env::new();
    let script = env.file("spin.rhai", "let n = 0;\nloop {\n    n += 1;\n}\n");
    let out = env.run(&["run", script.to_str().unwrap()]);
    out.code(1)
        .stderr_has("error: script stopped: it ran more than 20000000 operations")
        .stderr_has(&format!("--> {}:", script.display()));
}

#[test]
fn runaway_recursion_and_huge_data_are_stopped() {
    let env = Env::new();
    let deep = env.file("deep.rhai", "fn f(n) { f(n + 1) }\nf(0);\n");
    env.run(&["run", deep.to_str().unwrap()])
        .code(1)
        .stderr_has("script stopped: functions nested deeper than 64 calls");
    let huge = env.file("huge.rhai", "let s = \"x\";\nloop { s += s; }\n");
    env.run(&["run", huge.to_str().unwrap()])
        .code(1)
        .stderr_has("script stopped: Length of string grew beyond its limit");
    let array = env.file("array.rhai", "let a = [];\nloop { a.push(1); }\n");
    // Each push re-measures the array, so the operation count alone would take minutes: the
    // script's time limit stops it.
    let start = std::time::Instant::now();
    env.run(&["--script-timeout=2", "run", array.to_str().unwrap()])
        .code(1)
        .stderr_has("script stopped: it ran longer than 2 s");
    assert!(start.elapsed().as_secs() < 30);
}

#[test]
fn script_errors_show_file_line_column_and_the_line() {
    let env = Env::new();
    let script = env.file("oops.rhai", "let x = 1;\nlet y = x + missing;\n");
    let out = env.run(&["run", script.to_str().unwrap()]);
    out.code(1).stdout_is("");
    assert_eq!(
        out.stderr(),
        format!(
            "error: script error: Variable not found: missing\n  --> {}:2:13\n  |\n2 | let y = x + missing;\n  |             ^\n",
            script.display()
        )
    );
    let syntax = env.file("syntax.rhai", "let a = [1, 2;\n");
    env.run(&["run", syntax.to_str().unwrap()])
        .code(1)
        .stderr_has("error: syntax error in ")
        .stderr_has(&format!("--> {}:1:", syntax.display()));
    let thrown = env.file("throw.rhai", "fail(4, \"Operation cancelled.\");\n");
    env.run(&["run", thrown.to_str().unwrap()])
        .code(4)
        .one_error_line()
        .stderr_has("Operation cancelled.");
}

#[test]
fn errors_inside_a_stdlib_module_name_the_module_file() {
    let env = Env::new();
    let module = env.script(
        "stdlib/format.rhai",
        "fn vm_block() {\n    undefined_thing()\n}\n",
    );
    env.run(&["init"]).code(0);
    let out = env.run(&["list-vms"]);
    // list-vms calls fmt::vm_block(): the error points into the admin's module.
    out.code(1)
        .stderr_has("undefined_thing")
        .stderr_has(&format!("--> {}:2:5", module.display()));
}

#[test]
fn admin_commands_override_bundled_ones_and_add_new_ones() {
    let env = Env::new();
    env.seed(&[(1, &uuid(1), Some("web"), "A", 2)]);
    let override_path = env.script(
        "commands/list-pools.rhai",
        "//! List pools, the site's way.\nfor p in pools::list() { print(`${p.pool_id}=${p.vm_count}`); }\n",
    );
    env.script(
        "commands/vm-count.rhai",
        "//! Count the VMs of one pool.\n\
         //! @option --pool <pool> required  The pool to count\n\
         //! @option --style <short|long>      How to say it\n\
         //! @flag --verbose                   Say more\n\
         let n = vms::count(#{ pool: OPTS.pool });\n\
         if OPTS.style == \"long\" { print(`Pool ${OPTS.pool} holds ${n} VMs`); } else { print(`${n}`); }\n\
         if OPTS.verbose == true { print(\"(verbose)\"); }\n",
    );

    env.run(&["--help"])
        .code(0)
        .stdout_has_words("list-pools List pools, the site's way.")
        .stdout_has_words("vm-count Count the VMs of one pool.");
    env.run(&["vm-count", "--help"])
        .code(0)
        .stdout_has("--pool <A|B>")
        .stdout_has("--style <short|long>")
        .stdout_has("--verbose")
        .stdout_has("Script: ");
    env.run(&["list-pools"]).code(0).stdout_is("A=1\nB=0\n");
    env.run(&["vm-count", "--pool=a", "--style", "LONG", "--verbose"])
        .code(0)
        .stdout_is("Pool A holds 1 VMs\n(verbose)\n");
    env.run(&["vm-count", "--pool", "B"])
        .code(0)
        .stdout_is("0\n");
    env.run(&["vm-count", "--pool=A", "--style=loud"])
        .code(2)
        .one_error_line()
        .stderr_has("invalid value 'loud' for --style: expected one of short, long");

    env.run(&["commands"])
        .code(0)
        .stdout_has_words(&format!(
            "list-pools {} (overrides bundled)",
            override_path.display()
        ))
        .stdout_has_words("list-vms bundled")
        .stdout_has_words("vm-count");
    let json = env.run(&["commands", "--json"]).code(0).json();
    let vm_count = json
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "vm-count")
        .unwrap();
    assert_eq!(vm_count["bundled"], false);
}

#[test]
fn a_malformed_command_header_is_reported_with_its_line() {
    let env = Env::new();
    let path = env.script(
        "commands/broken.rhai",
        "//! Broken.\n//! @option --pool <colour>\n",
    );
    env.run(&["broken"])
        .code(1)
        .one_error_line()
        .stderr_has(&format!(
            "command script {} has a bad header, line 2: unknown value kind <colour>",
            path.display()
        ));
    // The other commands go on, saying which one was left out.
    env.run(&["init"])
        .code(0)
        .stderr_has("warning: command 'broken' is left out");
    env.run(&["list-vms"])
        .code(0)
        .stdout_is("No VMs found\n")
        .stderr_has("warning: command 'broken' is left out: command script");
}

#[test]
fn admin_stdlib_modules_shadow_the_bundled_ones() {
    let env = Env::new();
    env.seed(&[(1, &uuid(1), Some("web"), "A", 2)]);
    env.script(
        "stdlib/format.rhai",
        "fn vm_block() { \"{vm_id};{vm_name};{priority}\" }\nfn vm_line(indent) { indent + \"{vm_id}\" }\nfn pool(p) { p.pool_id }\n",
    );
    env.run(&["list-vms"]).code(0).stdout_is("1;web;high\n");
    env.run(&["show-pool", "--pool-id=A"])
        .code(0)
        .stdout_is("A\n\nVMs in this pool (1):\n  1\n");
}

#[test]
fn api_prints_every_host_function_with_its_documentation() {
    let env = Env::new();
    let out = env.run(&["api"]);
    out.code(0)
        .stdout_has("Module vms::")
        .stdout_has("  vms::get(uuid: string) -> any\n      The VM registered under `uuid`")
        .stdout_has("  vms::list(filter: map) -> VmList")
        .stdout_has("  vms::register(vm: map) -> map")
        .stdout_has("  vms::transaction(work: function) -> any")
        .stdout_has("  pools::get(pool_id: string) -> map")
        .stdout_has("  ui::confirm(question: string) -> bool")
        .stdout_has("  ui::print_each(rows: any, template: string, separator: string) -> int")
        .stdout_has("  fail(status: int, message: string) -> ()")
        .stdout_has("OPTS     map");
    let json = env.run(&["api", "--json"]).code(0).json();
    let functions = json.as_array().unwrap();
    assert!(functions.len() >= 15);
    assert!(
        functions
            .iter()
            .all(|f| !f["doc"].as_array().unwrap().is_empty()),
        "every function is documented"
    );
}

#[test]
fn concurrent_processes_never_get_the_same_vm_id() {
    let env = Env::new();
    env.run(&["init"]).code(0);
    let mut children = Vec::new();
    for p in 0..4u32 {
        let script = env.file(
            &format!("reg{p}.rhai"),
            &format!(
                "for i in 0..50 {{ vms::register(#{{ uuid: `7d5a8c3e-92f1-4b6a-b0c2-{p:03}${{ (100000000 + i).to_string() }}` }}); }}",
            ),
        );
        let mut cmd = env.command(["run", script.to_str().unwrap()]);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        children.push(cmd.spawn().unwrap());
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let conn = env.sql();
    let (rows, distinct, max): (i64, i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT vm_id), MAX(vm_id) FROM vms",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((rows, distinct, max), (200, 200, 200));
}
