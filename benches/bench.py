#!/usr/bin/env python3
"""vgpu-admin benchmarks: one command runs them all and prints a Markdown table.

    python3 benches/bench.py            # builds the release binary first
    python3 benches/bench.py --quick    # fewer repetitions
    python3 benches/bench.py --waves    # only the restarts in parallel waves (about 2 minutes)

Cold start of whole processes (median wall time over repeated runs, peak RSS), compared with the
sqlite3 command-line tool running the same query (the floor), on databases of 1,000 / 10,000 /
100,000 VMs. Nothing here is asserted: the figures go into the README.
"""
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "vgpu-admin")


GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def run(argv, env=None):
    """Runs argv once; returns (seconds, exit status)."""
    start = time.perf_counter()
    code = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start, code


def peak_rss_mib(argv, env=None):
    """Peak RSS of argv, read by GNU time (a fork of this Python process would inflate it)."""
    if not GNU_TIME:
        return None
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run([GNU_TIME, "-f", "%M", "-o", out.name] + argv, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return int(out.read().strip().splitlines()[-1]) / 1024


def measure(argv, repeat, env=None):
    """Median wall time in ms over `repeat` runs (after one warm-up run), and peak RSS in MiB."""
    run(argv, env)  # warm the page cache
    times = []
    for _ in range(repeat):
        t, code = run(argv, env)
        if code != 0:
            sys.exit(f"failed ({code}): {' '.join(argv)}")
        times.append(t)
    return statistics.median(times) * 1000, peak_rss_mib(argv, env)


def uuid(n):
    return f"7d5a8c3e-92f1-4b6a-b0c2-{n:012x}"


def make_db(path, count):
    env = dict(os.environ, VGPU_DB=path, VGPU_SCRIPTS="/nonexistent")
    subprocess.run([BIN, "init"], env=env, stdout=subprocess.DEVNULL, check=True)
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority) VALUES (?, ?, ?, ?, ?)",
        ((i, uuid(i), f"vm-{i:06}", "AB"[i % 2], i % 3) for i in range(1, count + 1)),
    )
    conn.commit()
    conn.close()
    return env


def xe_workloads(tmp, quick):
    """scan-vms and status with 1,000 VMs and a fake xe that sleeps 50 ms per call."""
    fake = os.path.join(ROOT, "target", "release", "fake-xe")
    db = os.path.join(tmp, "xe.db")
    env = make_db(db, 1_000)
    state = os.path.join(tmp, "xe-state.json")
    vms = [{"uuid": uuid(i), "name_label": f"vm-{i:06}", "power_state": "running",
            "platform": [["device-model-args",
                          f"-device vgpu-stub,pool_id={'AB'[i % 2]},priority={['low', 'medium', 'high'][i % 3]},vm_id={i}"]]}
           for i in range(1, 1_001)]
    with open(state, "w") as f:
        json.dump({"vms": vms}, f)
    log = os.path.join(tmp, "xe-calls.log")
    env = dict(env, VGPU_XE=fake, FAKE_XE_STATE=state, FAKE_XE_LOG=log, FAKE_XE_DELAY_MS="50")
    print()
    print("| 1,000 VMs, xe sleeping 50 ms per call | wall time (ms) | xe calls |")
    print("|---|---:|---:|")
    for args in (["scan-vms"], ["status"]):
        if os.path.exists(log):
            os.remove(log)
        t, code = run([BIN] + args, env)
        if code != 0:
            sys.exit(f"failed ({code}): {args}")
        with open(log) as f:
            calls = sum(1 for _ in f)
        ms, _ = measure([BIN] + args, 3 if quick else 10, env)
        print(f"| `{' '.join(args)}` | {ms:.0f} | {calls} |")


def change_workload(tmp, quick):
    """One change to a halted VM among 1,000 (journal, lock, 3 fake xe calls), end to end."""
    fake = os.path.join(ROOT, "target", "release", "fake-xe")
    db = os.path.join(tmp, "change.db")
    env = make_db(db, 1_000)
    target = 500
    state = os.path.join(tmp, "change-state.json")
    args = f"-device vgpu-stub,pool_id={'AB'[target % 2]},priority={['low', 'medium', 'high'][target % 3]},vm_id={target}"
    with open(state, "w") as f:
        json.dump({"vms": [{"uuid": uuid(target), "name_label": "vm", "power_state": "halted",
                            "platform": [["device-model-args", args]]}]}, f)
    env = dict(env, VGPU_XE=fake, FAKE_XE_STATE=state)
    times = []
    for i in range(5 if quick else 20):
        priority = ["low", "high"][i % 2]
        t, code = run([BIN, "set-priority", f"--vm-uuid={uuid(target)}", f"--priority={priority}"], env)
        if code != 0:
            sys.exit("set-priority failed")
        times.append(t * 1000)
    print()
    print("| change, 1,000 VMs registered, fake xe without delay | ms |")
    print("|---|---:|")
    print(f"| `set-priority` on a halted VM (lock, journal, 3 xe calls, 3 short writes) | {statistics.median(times):.1f} |")


def hook_workload(tmp, quick):
    """The vm-pre-start hook's in-sync path, run through the installed wrapper like xenopsd does."""
    fake = os.path.join(ROOT, "target", "release", "fake-xe")
    root = os.path.join(tmp, "root")
    subprocess.run([BIN, "install", "--relocated", "--root", root], stdout=subprocess.DEVNULL, check=True)
    db = os.path.join(root, "etc", "vgpu", "vgpu_config.db")
    conn = sqlite3.connect(db)
    conn.executemany(
        "INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority) VALUES (?, ?, ?, ?, ?)",
        ((i, uuid(i), f"vm-{i:06}", "AB"[i % 2], i % 3) for i in range(1, 1_001)),
    )
    conn.commit()
    conn.close()
    target = 500
    state = os.path.join(tmp, "hook-state.json")
    args = f"-device vgpu-stub,pool_id={'AB'[target % 2]},priority={['low', 'medium', 'high'][target % 3]},vm_id={target}"
    with open(state, "w") as f:
        json.dump({"vms": [{"uuid": uuid(target), "name_label": "vm", "power_state": "halted",
                            "platform": [["device-model-args", args]]}]}, f)
    log = os.path.join(tmp, "hook-calls.log")
    env = dict(os.environ, VGPU_XE=fake, FAKE_XE_STATE=state, FAKE_XE_LOG=log)
    wrapper = os.path.join(root, "etc", "xapi.d", "vm-pre-start", "50-vgpu-admin")
    argv = [wrapper, "-vmuuid", uuid(target), "-reason", "none"]
    if os.path.exists(log):
        os.remove(log)
    _, code = run(argv, env)
    if code != 0:
        sys.exit(f"hook not in sync ({code})")
    with open(log) as f:
        calls = sum(1 for _ in f)
    repeat = 5 if quick else 30
    hook_ms, rss = measure(argv, repeat, env)
    xe_ms, _ = measure([fake, "vm-param-get", f"uuid={uuid(target)}", "param-name=platform",
                        "param-key=device-model-args"], repeat, env)
    print()
    print("| vm-pre-start hook, VM in sync, 1,000 VMs registered | ms |")
    print("|---|---:|")
    print(f"| whole hook through the wrapper (sh + vgpu-admin + {calls} fake xe call) | {hook_ms:.1f} |")
    print(f"| of which the fake xe call alone | {xe_ms:.1f} |")
    print(f"| vgpu-admin's own time (difference) | {hook_ms - xe_ms:.1f} |")
    print(f"| peak RSS (MiB) | {rss:.1f} |" if rss is not None else "| peak RSS | - |")


def bulk_workload(tmp, quick):
    """10,000 VMs registered by a .rhai script (database only, one transaction), then listed."""
    script = os.path.join(tmp, "bulk.rhai")
    with open(script, "w") as f:
        f.write(
            "// 10,000 registrations in one transaction.\n"
            "vms::transaction(|| {\n"
            "    for i in 1..=10000 {\n"
            "        let hex = i.to_hex();\n"
            "        while hex.len() < 12 { hex = \"0\" + hex; }\n"
            "        vms::register(#{ uuid: `7d5a8c3e-92f1-4b6a-b0c2-${hex}`, name: `vm-${i}`, pool: if i % 2 == 0 { \"A\" } else { \"B\" } });\n"
            "    }\n"
            "});\n"
        )
    times = []
    for _ in range(3 if quick else 5):
        db = os.path.join(tmp, "bulk.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        env = dict(os.environ, VGPU_DB=db, VGPU_SCRIPTS="/nonexistent")
        subprocess.run([BIN, "init"], env=env, stdout=subprocess.DEVNULL, check=True)
        t, code = run([BIN, "run", script], env)
        if code != 0:
            sys.exit("bulk registration failed")
        times.append(t * 1000)
    json_ms, rss = measure([BIN, "--json", "list-vms"], 5 if quick else 20, env)
    print()
    print("| bulk | ms | peak RSS (MiB) |")
    print("|---|---:|---:|")
    print(f"| `vgpu-admin run bulk.rhai`: 10,000 registrations in one transaction | {statistics.median(times):.0f} | - |")
    print(f"| then `vgpu-admin --json list-vms` on them | {json_ms:.1f} | {rss:.1f} |")


def waves_workload(tmp):
    """`apply FILE` changing 20 running VMs with xe taking 1 s per vm-shutdown and per vm-start
    (50 ms per call otherwise), for --parallel 1, 4 and 8; the xe calls per VM."""
    import math
    fake = os.path.join(ROOT, "target", "release", "fake-xe")
    count = 20
    plan = os.path.join(tmp, "users.toml")
    with open(plan, "w") as f:
        for i in range(1, count + 1):
            f.write(f'[[vm]]\nuuid = "{uuid(i)}"\npool = "{"A" if i <= 7 else "B"}"\n'
                    f'priority = "{["low", "high"][i % 2]}"\nvm_id = {i}\n\n')
    print()
    print(f"| `apply` changing {count} running VMs; xe: 1 s per vm-shutdown and vm-start, 50 ms per other call "
          "| wall time (s) | bound 1.25 × ⌈20/K⌉ × 2 s | within | xe calls per VM | vm-list calls |")
    print("|---|---:|---:|---|---|---:|")
    for k in (1, 4, 8):
        db = os.path.join(tmp, f"waves{k}.db")
        env = make_db(db, 0)
        conn = sqlite3.connect(db)
        conn.executemany(
            "INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority) VALUES (?, ?, ?, 'B', 1)",
            ((i, uuid(i), f"user-{i:02}") for i in range(1, count + 1)))
        conn.commit()
        conn.close()
        state = os.path.join(tmp, f"waves{k}.json")
        vms = [{"uuid": uuid(i), "name_label": f"user-{i:02}", "power_state": "running",
                "platform": [["device-model-args", f"-device vgpu-stub,pool_id=B,priority=medium,vm_id={i}"]]}
               for i in range(1, count + 1)]
        faults = [{"command": c, "delay_ms": 950} for c in ("vm-shutdown", "vm-start")]
        with open(state, "w") as f:
            json.dump({"vms": vms, "faults": faults}, f)
        log = os.path.join(tmp, f"waves{k}.log")
        env = dict(env, VGPU_XE=fake, FAKE_XE_STATE=state, FAKE_XE_LOG=log, FAKE_XE_DELAY_MS="50")
        t, code = run([BIN, "--yes", "apply", f"--parallel={k}", plan], env)
        if code != 0:
            sys.exit(f"apply --parallel={k} failed ({code})")
        with open(log) as f:
            calls = [json.loads(line) for line in f]
        per_vm = {}
        for c in calls:
            if any(a == f"uuid={uuid(1)}" for a in c):
                per_vm[c[0]] = per_vm.get(c[0], 0) + 1
        listing = sum(1 for c in calls if c[0] == "vm-list")
        bound = 1.25 * math.ceil(count / k) * 2
        shown = ", ".join(f"{n} {name}" for name, n in sorted(per_vm.items()))
        print(f"| `--parallel {k}` | {t:.1f} | {bound:.1f} | {'yes' if t <= bound else 'NO'} | {shown} | {listing} |")
        sys.stdout.flush()


def main():
    quick = "--quick" in sys.argv
    # The fake xe is test support: built with its feature.
    subprocess.run(["cargo", "build", "--release", "--quiet", "--features", "test-support"], cwd=ROOT, check=True)
    if "--waves" in sys.argv:
        tmp = tempfile.mkdtemp(prefix="vgpu-bench-")
        try:
            waves_workload(tmp)
        finally:
            shutil.rmtree(tmp)
        return
    sqlite = shutil.which("sqlite3")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    print(f"Binary: {BIN}\n")
    print("| VMs | command | vgpu-admin (ms) | sqlite3 CLI (ms) | ratio | vgpu-admin max RSS (MiB) |")
    print("|---:|---|---:|---:|---:|---:|")
    tmp = tempfile.mkdtemp(prefix="vgpu-bench-")
    try:
        for count in (1_000, 10_000, 100_000):
            db = os.path.join(tmp, f"vms{count}.db")
            env = make_db(db, count)
            repeat = 5 if quick else (30 if count <= 10_000 else 10)
            cols = "vm_id, vm_uuid, vm_name, pool_id, priority, created_at, updated_at"
            target = uuid(count // 2)
            cases = [
                (["list-vms"], f"SELECT {cols} FROM vms ORDER BY vm_id"),
                (["list-vms", "--pool=A"], f"SELECT {cols} FROM vms WHERE pool_id='A' ORDER BY vm_id"),
                (["list-pools"], "SELECT p.*, (SELECT COUNT(*) FROM vms v WHERE v.pool_id=p.pool_id) FROM pools p"),
                (["show-vm", f"--vm-uuid={target}"], f"SELECT {cols} FROM vms WHERE vm_uuid='{target}'"),
                (["--json", "list-vms"], None),
            ]
            for args, query in cases:
                ms, rss = measure([BIN] + args, repeat, env)
                if sqlite and query:
                    floor, _ = measure([sqlite, db, query], repeat)
                    floor_s, ratio = f"{floor:.1f}", f"{ms / floor:.2f}"
                else:
                    floor_s, ratio = "-", "-"
                rss_s = f"{rss:.1f}" if rss is not None else "-"
                shown = " ".join(a if len(a) < 30 else a[:22] + "…" for a in args)
                print(f"| {count:,} | `{shown}` | {ms:.1f} | {floor_s} | {ratio} | {rss_s} |")
                sys.stdout.flush()
        xe_workloads(tmp, quick)
        change_workload(tmp, quick)
        hook_workload(tmp, quick)
        bulk_workload(tmp, quick)
        waves_workload(tmp)
        print()
        sys.stdout.flush()
        subprocess.run(["cargo", "bench", "--quiet", "--bench", "completion"], cwd=ROOT, check=True)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
