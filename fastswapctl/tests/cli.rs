//! The real binary against fake /sys and /proc trees (--root).

use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;
use tempfile::TempDir;

const FASTSWAP: &str = "sys/kernel/mm/fastswap";
const SYSCTL: &str = "proc/sys/vm/memcg_reclaim_offload_cpu";

/// A patched kernel with the DRAM backend and fastswap.ko loaded, 4 CPUs
/// of which CPU 2 is offline; reclaim offload off.
struct Fake {
    dir: TempDir,
}

impl Fake {
    fn new() -> Self {
        let fake = Fake {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for (name, value) in [
            ("enabled", "1"),
            ("backend", "dram"),
            ("state", "active"),
            ("server", ""),
            ("queues", "0"),
            ("capacity_bytes", "536870912"),
            ("stored_pages", "65536"),
            ("used_bytes", "269484032"),
            ("stores", "131516"),
            ("loads", "196698"),
            ("async_loads", "172035"),
            ("failed_stores", "3"),
            ("failed_loads", "0"),
            ("invalidates", "131000"),
            // A file from a later kernel: ignored.
            ("compressed_pages", "12"),
        ] {
            fake.set(name, value);
        }
        fake.module("fastswap", true);
        fake.module("fastswap_dram", true);
        fake.write(SYSCTL, "-1\n");
        fake.write(
            "proc/vmstat",
            "nr_free_pages 1\npswpin 196700\npswpout 131519\n",
        );
        fake.write("sys/devices/system/cpu/online", "0-1,3\n");
        // cpu0 has no online file, as on most machines.
        fs::create_dir_all(fake.path("sys/devices/system/cpu/cpu0")).expect("cpu0");
        for (cpu, online) in [(1, "1"), (2, "0"), (3, "1")] {
            fake.write(
                &format!("sys/devices/system/cpu/cpu{cpu}/online"),
                &format!("{online}\n"),
            );
        }
        fake
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        fs::write(p, text).expect("write");
    }

    /// Sets a /sys/kernel/mm/fastswap file (one value and a newline).
    fn set(&self, name: &str, value: &str) {
        self.write(&format!("{FASTSWAP}/{name}"), &format!("{value}\n"));
    }

    fn module(&self, name: &str, loaded: bool) {
        let p = self.path(&format!("sys/module/{name}"));
        if loaded {
            fs::create_dir_all(p).expect("module dir");
        } else {
            let _ = fs::remove_dir(p);
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fastswapctl"));
        c.arg("--root").arg(self.dir.path()).args(args);
        c.env_remove("FASTSWAPCTL_ROOT");
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::of(self.command(args).output().expect("runs fastswapctl"))
    }

    fn sysctl(&self) -> String {
        fs::read_to_string(self.path(SYSCTL)).expect("sysctl")
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// The value of a table row.
fn row<'a>(table: &'a str, label: &str) -> &'a str {
    table
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(label)?;
            rest.starts_with("  ").then(|| rest.trim())
        })
        .unwrap_or_else(|| panic!("no row {label:?} in:\n{table}"))
}

#[test]
fn status_table() {
    let fake = Fake::new();
    let r = fake.run(&["status"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stderr, "");
    let t = &r.stdout;
    assert_eq!(row(t, "modules loaded"), "fastswap, fastswap_dram");
    assert_eq!(row(t, "enabled"), "yes");
    assert_eq!(row(t, "backend"), "dram");
    assert_eq!(row(t, "state"), "active");
    assert_eq!(row(t, "server"), "-");
    assert_eq!(row(t, "queues"), "0");
    assert_eq!(row(t, "capacity"), "512.0 MiB");
    assert!(row(t, "stored").ends_with("(65536 pages)"), "{t}");
    assert_eq!(row(t, "used"), "257.0 MiB");
    assert_eq!(row(t, "stores"), "131516");
    assert_eq!(row(t, "loads"), "196698");
    assert_eq!(row(t, "async loads"), "172035");
    assert_eq!(row(t, "failed stores"), "3");
    assert_eq!(row(t, "failed loads"), "0");
    assert_eq!(row(t, "invalidates"), "131000");
    assert_eq!(row(t, "kernel pswpin"), "196700");
    assert_eq!(row(t, "kernel pswpout"), "131519");
    assert_eq!(row(t, "reclaim offload CPU"), "off");
    assert!(
        !t.contains("compressed"),
        "an unknown file is not shown:\n{t}"
    );
}

#[test]
fn status_json() {
    let fake = Fake::new();
    fake.set("backend", "rdma");
    fake.set("server", "10.0.0.2:50000");
    fake.set("queues", "12");
    // Beyond 2^53: JSON keeps exact integers.
    fake.set("stores", "18446744073709551615");
    fake.module("fastswap_dram", false);
    fake.module("fastswap_rdma", true);
    fake.write(SYSCTL, "3\n");
    let r = fake.run(&["status", "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains("\"stores\":18446744073709551615"),
        "{}",
        r.stdout
    );
    let j = r.json();
    assert_eq!(j["enabled"], true);
    assert_eq!(j["backend"], "rdma");
    assert_eq!(j["state"], "active");
    assert_eq!(j["server"], "10.0.0.2:50000");
    assert_eq!(j["queues"], 12);
    assert_eq!(j["capacity_bytes"], 536870912u64);
    assert_eq!(j["stored_pages"], 65536);
    assert_eq!(j["used_bytes"], 269484032u64);
    assert_eq!(j["loads"], 196698);
    assert_eq!(j["async_loads"], 172035);
    assert_eq!(j["failed_stores"], 3);
    assert_eq!(j["failed_loads"], 0);
    assert_eq!(j["invalidates"], 131000);
    assert_eq!(
        j["modules"],
        serde_json::json!({"fastswap": true, "fastswap_rdma": true, "fastswap_dram": false})
    );
    assert_eq!(j["reclaim_offload_cpu"], 3);
    assert_eq!(j["vmstat"]["pswpin"], 196700);
    assert!(j.get("compressed_pages").is_none());

    let table = fake.run(&["status"]).stdout;
    assert_eq!(row(&table, "server"), "10.0.0.2:50000");
    assert_eq!(row(&table, "reclaim offload CPU"), "3");
}

#[test]
fn reclaim_offload_off_is_json_null() {
    let fake = Fake::new();
    let j = fake.run(&["status", "--json"]).json();
    assert!(j["reclaim_offload_cpu"].is_null(), "{j}");
    assert!(j.get("reclaim_offload_cpu").is_some());
}

#[test]
fn missing_or_bad_file_is_named() {
    let fake = Fake::new();
    fs::remove_file(fake.path(&format!("{FASTSWAP}/async_loads"))).expect("rm");
    let r = fake.run(&["status"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("async_loads"), "{}", r.stderr);
    assert!(r.stderr.contains("fastswapctl: error:"), "{}", r.stderr);

    let fake = Fake::new();
    fake.set("state", "sleeping");
    let r = fake.run(&["status", "--json"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("state") && r.stderr.contains("sleeping"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");

    let fake = Fake::new();
    fake.set("used_bytes", "-5");
    let r = fake.run(&["status"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("used_bytes"), "{}", r.stderr);
}

#[test]
fn no_patch_is_exit_4() {
    let fake = Fake::new();
    fs::remove_dir_all(fake.path(FASTSWAP)).expect("rm");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["watch", "--count", "1"],
    ] {
        let r = fake.run(args);
        assert_eq!(r.code, Some(4), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("kernel-patch/"), "{}", r.stderr);
        assert_eq!(r.stdout, "");
    }
    fs::remove_file(fake.path(SYSCTL)).expect("rm");
    for args in [
        &["reclaim-offload"][..],
        &["reclaim-offload", "1"],
        &["reclaim-offload", "off"],
    ] {
        let r = fake.run(args);
        assert_eq!(r.code, Some(4), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("memcg_reclaim_offload_cpu"),
            "{}",
            r.stderr
        );
    }
    assert!(!fake.path(SYSCTL).exists(), "no sysctl created");
}

#[test]
fn not_active_is_exit_3_with_what_to_load() {
    // No backend, no fastswap.ko.
    let fake = Fake::new();
    fake.set("enabled", "0");
    fake.set("backend", "none");
    fake.set("state", "none");
    fake.set("capacity_bytes", "0");
    fake.module("fastswap", false);
    fake.module("fastswap_dram", false);
    let r = fake.run(&["status"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert_eq!(
        row(&r.stdout, "backend"),
        "none",
        "the status is still printed"
    );
    assert_eq!(row(&r.stdout, "modules loaded"), "none");
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("no backend module is loaded"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("insmod fastswap_rdma.ko"), "{}", r.stderr);
    assert!(r.stderr.contains("fastswap_dram.ko"), "{}", r.stderr);
    assert!(
        r.stderr.trim_end().ends_with("then fastswap.ko"),
        "{}",
        r.stderr
    );
    let r = fake.run(&["status", "--json"]);
    assert_eq!(r.code, Some(3));
    assert_eq!(r.json()["backend"], "none");

    // A backend, but no fastswap.ko.
    let fake = Fake::new();
    fake.set("enabled", "0");
    fake.module("fastswap", false);
    let r = fake.run(&["status"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("insmod fastswap.ko"), "{}", r.stderr);
    assert!(!r.stderr.contains("fastswap_rdma"), "{}", r.stderr);

    // A state the kernel printed as "unknown" (a backend's value it has
    // no name for): shown, and not active.
    let fake = Fake::new();
    fake.set("state", "unknown");
    let r = fake.run(&["status"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert_eq!(row(&r.stdout, "state"), "unknown");

    // Far memory lost.
    let fake = Fake::new();
    fake.set("backend", "rdma");
    fake.set("state", "lost");
    fake.set("server", "10.0.0.2:50000");
    let r = fake.run(&["watch", "--count", "1"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("10.0.0.2:50000 was lost"), "{}", r.stderr);

    // Reconnecting: shown, not active, and JSON names the state.
    let fake = Fake::new();
    fake.set("backend", "rdma");
    fake.set("state", "reconnecting");
    fake.set("server", "10.0.0.2:50000");
    let r = fake.run(&["status", "--json"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stdout.contains("\"state\":\"reconnecting\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("connection to 10.0.0.2:50000 is down"),
        "{}",
        r.stderr
    );
}

#[test]
fn watch_json_rates() {
    let fake = Fake::new();
    let mut child = fake
        .command(&["watch", "--interval", "1", "--count", "3", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines().map(|l| {
        let l = l.expect("reads");
        serde_json::from_str::<Value>(&l).unwrap_or_else(|e| panic!("{e}: {l}"))
    });
    let first = lines.next().expect("a first line");
    // After the first read: 2000 more stores and 500 more loads, seen by
    // the second read (or the third, if this test was slow).
    fake.set("stores", "133516");
    fake.set("loads", "197198");
    let mut all = vec![first];
    all.extend(lines);
    let out = child.wait_with_output().expect("waits");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(all.len(), 3, "--count 3 stops after three");

    assert!(
        all[0]["rates"].is_null() && all[0]["interval_secs"].is_null(),
        "{}",
        all[0]
    );
    assert_eq!(all[0]["stores"], 131516);
    assert_eq!(all[2]["stores"], 133516, "the change was seen");
    // Each rate is the change over the measured time, so over both
    // refreshes they add up to the whole change.
    let mut stores = 0.0;
    let mut loads = 0.0;
    for pair in all.windows(2) {
        let (prev, cur) = (&pair[0], &pair[1]);
        let secs = cur["interval_secs"].as_f64().expect("interval_secs");
        assert!((0.9..10.0).contains(&secs), "measured {secs} s");
        let rate = |name: &str| {
            cur["rates"][name]
                .as_f64()
                .unwrap_or_else(|| panic!("rates.{name}: {cur}"))
        };
        let delta = |name: &str| {
            (cur[name].as_u64().expect("counter") - prev[name].as_u64().expect("counter")) as f64
        };
        for name in [
            "stores",
            "loads",
            "async_loads",
            "failed_stores",
            "failed_loads",
            "invalidates",
        ] {
            assert!(
                (rate(name) - delta(name) / secs).abs() < 1e-6,
                "{name}: {cur}"
            );
        }
        stores += rate("stores") * secs;
        loads += rate("loads") * secs;
    }
    assert!((stores - 2000.0).abs() < 1e-6, "{stores}");
    assert!((loads - 500.0).abs() < 1e-6, "{loads}");
    assert_eq!(all[2]["rates"]["async_loads"], 0.0);
}

#[test]
fn watch_appends_blocks_when_not_a_terminal() {
    let fake = Fake::new();
    let r = fake.run(&["watch", "--interval", "0.1", "--count", "3"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stdout.contains('\x1b'), "no terminal codes in a pipe");
    let blocks: Vec<&str> = r.stdout.split("\n\n").filter(|b| !b.is_empty()).collect();
    assert_eq!(blocks.len(), 3, "{}", r.stdout);
    assert!(blocks[0].starts_with("refresh 1:"), "{}", blocks[0]);
    assert!(
        blocks[2].starts_with("refresh 3: rates over the last"),
        "{}",
        blocks[2]
    );
    assert_eq!(row(blocks[0], "stores"), "131516", "no rate on the first");
    let stores: Vec<&str> = row(blocks[2], "stores").split_whitespace().collect();
    assert_eq!(stores, ["131516", "0.0/s"]);
}

#[test]
fn watch_stops_on_sigint() {
    let fake = Fake::new();
    let mut child = fake
        .command(&["watch", "--interval", "0.2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    // The first line means the handler is in place; then a few refreshes.
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut text = String::new();
    stdout.read_line(&mut text).expect("a first line");
    thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    stdout.read_to_string(&mut text).expect("the rest");
    let status = child.wait().expect("waits");
    assert_eq!(status.code(), Some(0), "exits by itself, cleanly");
    assert!(text.ends_with("}\n"), "whole lines: {text}");
    for line in text.lines() {
        serde_json::from_str::<Value>(line).expect("each line is JSON");
    }
}

#[test]
fn watch_stops_when_the_reader_goes() {
    let fake = Fake::new();
    let mut child = fake
        .command(&["watch", "--interval", "0.1", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a first line");
    // As `| head -1` does: the next refresh's write gets EPIPE.
    drop(stdout);
    let out = child.wait_with_output().expect("waits");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "no error on EPIPE"
    );
}

#[test]
fn watch_rejects_bad_options() {
    let fake = Fake::new();
    for args in [
        &["watch", "--interval", "0"][..],
        &["watch", "--interval", "-1"],
        &["watch", "--interval", "soon"],
        &["watch", "--count", "0"],
    ] {
        assert_eq!(fake.run(args).code, Some(2), "{args:?}");
    }
}

#[test]
fn reclaim_offload_shows_and_sets() {
    let fake = Fake::new();
    let r = fake.run(&["reclaim-offload"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "off\n"),
        "{}",
        r.stderr
    );

    let r = fake.run(&["reclaim-offload", "3"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(fake.sysctl(), "3\n");
    assert_eq!(r.stdout, "reclaim offload: CPU 3 (was off)\n");
    assert_eq!(fake.run(&["reclaim-offload"]).stdout, "3\n");

    // cpu0 has no online file: the online list decides.
    let r = fake.run(&["reclaim-offload", "0"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(fake.sysctl(), "0\n");

    let r = fake.run(&["reclaim-offload", "off"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(fake.sysctl(), "-1\n");
    assert_eq!(r.stdout, "reclaim offload: off (was CPU 0)\n");
}

#[test]
fn reclaim_offload_refuses_offline_and_missing_cpus() {
    let fake = Fake::new();
    fake.write(SYSCTL, "1\n");
    let r = fake.run(&["reclaim-offload", "2"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("CPU 2 is offline"), "{}", r.stderr);
    assert!(r.stderr.contains("online CPUs: 0-1,3"), "{}", r.stderr);
    assert_eq!(fake.sysctl(), "1\n", "not written");

    let r = fake.run(&["reclaim-offload", "9"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("CPU 9 does not exist"), "{}", r.stderr);
    assert!(r.stderr.contains("online CPUs: 0-1,3"), "{}", r.stderr);
    assert_eq!(fake.sysctl(), "1\n", "not written");

    for bad in ["-1", "cpu1", "1.5"] {
        let r = fake.run(&["reclaim-offload", bad]);
        assert_eq!(r.code, Some(2), "{bad}: {}", r.stderr);
    }
    assert_eq!(fake.sysctl(), "1\n");
}

#[test]
fn help_lists_exit_statuses_and_root_is_hidden() {
    let fake = Fake::new();
    let r = fake.run(&["--help"]);
    assert_eq!(r.code, Some(0));
    for code in 0..=4 {
        assert!(r.stdout.contains(&format!("\n  {code}  ")), "{}", r.stdout);
    }
    assert!(!r.stdout.contains("--root"), "{}", r.stdout);
    let r = fake.run(&["--version"]);
    assert_eq!(
        r.stdout,
        format!("fastswapctl {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn root_from_the_environment() {
    let fake = Fake::new();
    let out = Command::new(env!("CARGO_BIN_EXE_fastswapctl"))
        .args(["status", "--json"])
        .env("FASTSWAPCTL_ROOT", fake.dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let j: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(j["stores"], 131516);
}
