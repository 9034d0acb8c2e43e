//! Sessions: record a live run, replay it without the kernel, export and re-run it, survive
//! SIGKILL, read it the way Nushell does, reject bad files, never follow a planted symlink.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{privileged, testee, unique_prefix};

fn nubpf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nubpf-tui"))
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A temporary path removed (with SQLite's side files) when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new(tag: &str, ext: &str) -> Temp {
        Temp(PathBuf::from(format!("{}{ext}", unique_prefix(tag))))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

fn record(script: &str, workload: &str, db: &Path) -> String {
    ok(&nubpf()
        .args([
            "run", "-e", script, "-c", workload, "--format", "json", "--record",
        ])
        .arg(db)
        .output()
        .unwrap())
}

fn replay(db: &Path, extra: &[&str]) -> Output {
    nubpf().arg("replay").arg(db).args(extra).output().unwrap()
}

fn script_for(prefix: &str) -> String {
    format!(
        r#"bpf_tracepoint "syscalls:sys_enter_openat" {{|e| if $e.filename starts-with "{prefix}" {{ emit {{pid: $e.pid, comm: $e.comm, file: $e.filename, flags: $e.flags}} }} }}
bpf_tracepoint "syscalls:sys_exit_openat" {{|e| if $e.comm == "testee" {{ hist $e.ret }} }}"#
    )
}

#[test]
fn record_then_replay_gives_the_same_records_in_order() {
    if !privileged("record_then_replay_gives_the_same_records_in_order") {
        return;
    }
    let db = Temp::new("rec", ".db");
    let prefix = unique_prefix("recfiles");
    let live = record(
        &script_for(&prefix),
        &format!("{} open {prefix} 25", testee().display()),
        &db.0,
    );
    let live_records: Vec<&str> = live.lines().filter(|l| l.contains("\"file\"")).collect();
    assert_eq!(live_records.len(), 25, "{live}");
    let replayed = ok(&replay(&db.0, &["--format", "json"]));
    let replayed_records: Vec<&str> = replayed
        .lines()
        .filter(|l| l.contains("\"file\""))
        .collect();
    assert_eq!(replayed_records, live_records);
    // The histogram's final snapshot is in the recording too.
    assert!(
        replayed.contains(r#""aggregation":"hist_ret""#),
        "{replayed}"
    );
}

#[test]
fn replay_runs_the_recorded_pipeline() {
    if !privileged("replay_runs_the_recorded_pipeline") {
        return;
    }
    let db = Temp::new("recpipe", ".db");
    let prefix = unique_prefix("recpipe");
    let script = format!(
        r#"bpf_tracepoint "syscalls:sys_enter_openat" {{|e| if $e.filename starts-with "{prefix}" {{ emit {{pid: $e.pid, file: $e.filename}} }} }} | where file ends-with "7" | length"#
    );
    let live = record(
        &script,
        &format!("{} open {prefix} 30", testee().display()),
        &db.0,
    );
    assert_eq!(live.trim(), "3", "{live}");
    assert_eq!(ok(&replay(&db.0, &["--format", "json"])).trim(), "3");
}

#[test]
fn exported_script_runs_with_the_same_columns() {
    if !privileged("exported_script_runs_with_the_same_columns") {
        return;
    }
    let db = Temp::new("exp", ".db");
    let nu = Temp::new("exp", ".nu");
    let prefix = unique_prefix("expfiles");
    let workload = format!("{} open {prefix} 3", testee().display());
    let live = record(&script_for(&prefix), &workload, &db.0);
    ok(&nubpf()
        .arg("export")
        .arg(&db.0)
        .arg("-o")
        .arg(&nu.0)
        .output()
        .unwrap());
    let text = std::fs::read_to_string(&nu.0).unwrap();
    assert!(text.starts_with("# nubpf session recorded "), "{text}");
    assert!(text.contains(&script_for(&prefix)), "{text}");
    let again = ok(&nubpf()
        .arg("run")
        .arg(&nu.0)
        .args(["-c", &workload, "--format", "json"])
        .output()
        .unwrap());
    let keys = |s: &str| -> Vec<String> {
        s.lines()
            .find(|l| l.contains("\"file\""))
            .map(|l| {
                l.trim_matches(|c| c == '{' || c == '}')
                    .split(',')
                    .filter_map(|kv| kv.split_once(':'))
                    .map(|(k, _)| k.trim_matches('"').to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(keys(&again), keys(&live));
    assert_eq!(keys(&live), ["pid", "comm", "file", "flags"]);
    // The second probe (the histogram) attached and counted the testee's opens too.
    for out in [&live, &again] {
        assert!(out.contains(r#""aggregation":"hist_ret""#), "{out}");
    }
    assert_eq!(
        again.lines().filter(|l| l.contains("\"file\"")).count(),
        3,
        "{again}"
    );
    for (format, first) in [
        ("json", r#"[{"pid":"#),
        ("nuon", "[[pid, comm, file, flags]; ["),
    ] {
        let out = Temp::new("exp", &format!(".{format}"));
        ok(&nubpf()
            .arg("export")
            .arg(&db.0)
            .args(["--probe", "sys_enter_openat", "--format", format, "-o"])
            .arg(&out.0)
            .output()
            .unwrap());
        let text = std::fs::read_to_string(&out.0).unwrap();
        assert!(text.starts_with(first), "{format}: {text}");
        for i in 0..3 {
            assert!(
                text.contains(&format!("\"{prefix}{i}\"")),
                "{format}: {text}"
            );
        }
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&out.0).unwrap().mode() & 0o777, 0o600);
    }
    let csv = Temp::new("exp", ".csv");
    ok(&nubpf()
        .arg("export")
        .arg(&db.0)
        .args(["--probe", "sys_enter_openat", "--format", "csv", "-o"])
        .arg(&csv.0)
        .output()
        .unwrap());
    let csv_text = std::fs::read_to_string(&csv.0).unwrap();
    assert_eq!(csv_text.lines().next(), Some("pid,comm,file,flags"));
    assert_eq!(csv_text.lines().count(), 4);
}

#[test]
fn sigkill_while_recording_leaves_a_valid_file() {
    if !privileged("sigkill_while_recording_leaves_a_valid_file") {
        return;
    }
    let db = Temp::new("kill", ".db");
    let mut child = nubpf()
        .args([
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_getpid" {|e| emit {pid: $e.pid, comm: $e.comm} }"#,
            "--format",
            "json",
            "-c",
            &format!("{} getpid 100000000", testee().display()),
            "--record",
        ])
        .arg(&db.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    // The traced command is a child of the killed process: stop it too.
    let _ = Command::new("pkill")
        .args(["-f", "testee getpid 100000000"])
        .status();
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn
        .prepare("SELECT seq, ts, pid, comm FROM sys_enter_getpid")
        .unwrap();
    let rows: Vec<(i64, i64, i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .expect("every committed row readable");
    assert!(rows.len() > 1000, "only {} rows committed", rows.len());
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
}

#[test]
fn nushell_reads_the_recording_with_its_own_queries() {
    // No `nu` binary is installed in CI: this issues the SQLite queries `open file.db`
    // runs (list the tables, then `SELECT *` from the one `get` picks) and checks the
    // types Nushell would build from them.
    if !privileged("nushell_reads_the_recording_with_its_own_queries") {
        return;
    }
    let db = Temp::new("nu", ".db");
    let prefix = unique_prefix("nufiles");
    record(
        &script_for(&prefix),
        &format!("{} open {prefix} 4", testee().display()),
        &db.0,
    );
    let conn =
        rusqlite::Connection::open_with_flags(&db.0, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in [
        "nubpf_meta",
        "nubpf_probes",
        "nubpf_aggregates",
        "sys_enter_openat",
        "sys_exit_openat",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} missing from {tables:?}");
    }
    let mut stmt = conn.prepare("SELECT * FROM sys_enter_openat").unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(names, ["seq", "ts", "pid", "comm", "file", "flags"]);
    let rows: Vec<(i64, String, String)> = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .all(|(pid, comm, file)| *pid > 0 && comm == "testee" && file.starts_with(&prefix))
    );
}

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn bad_recordings_are_refused_clearly_and_left_untouched() {
    let random = Temp::new("bad-random", ".db");
    let seed = unique_prefix("x");
    let bytes: Vec<u8> = seed
        .bytes()
        .cycle()
        .take(8192)
        .enumerate()
        .map(|(i, b)| b.wrapping_mul(i as u8 | 1))
        .collect();
    std::fs::write(&random.0, &bytes).unwrap();
    let truncated = Temp::new("bad-trunc", ".db");
    let wrong_version = Temp::new("bad-version", ".db");
    let missing_table = Temp::new("bad-table", ".db");
    let plain = Temp::new("bad-plain", ".db");
    // A real recording, written by the recorder (a raw tracepoint needs only BTF to compile,
    // no root), then damaged in copies.
    let good = Temp::new("bad-good", ".db");
    {
        use nubpf_tui::app::session::record::{Columns, Item, Recorder};
        use nubpf_tui::probes::catalogue::Catalogue;
        use nubpf_tui::probes::runtime::decode::Value;
        let (script, diagnostics) = nubpf_tui::probes::front::compile(
            r#"bpf_raw_tracepoint "sys_enter" {|ctx| emit {pid: $ctx.pid} }"#,
            &Catalogue::system(),
        );
        let script = script.unwrap_or_else(|| panic!("{diagnostics:?}"));
        let recorder = Recorder::create(&good.0, &script, "test").unwrap();
        for pid in 0..100 {
            recorder.write(Item::Record {
                probe: 0,
                columns: Columns::Event(0),
                ts: pid,
                values: vec![Value::UInt(pid)],
            });
        }
        assert_eq!(recorder.finish().unwrap(), 100);
        // Good as written: replay reads all of it.
        let out = ok(&replay(&good.0, &["--format", "json"]));
        assert_eq!(
            out.lines().filter(|l| l.starts_with("{\"pid\"")).count(),
            100
        );

        let whole = std::fs::read(&good.0).unwrap();
        std::fs::write(&truncated.0, &whole[..whole.len() / 3]).unwrap();
        for (copy, damage) in [
            (
                &wrong_version,
                "UPDATE nubpf_meta SET value = '99' WHERE key = 'format_version'",
            ),
            (&missing_table, "DROP TABLE sys_enter"),
        ] {
            std::fs::write(&copy.0, &whole).unwrap();
            let c = rusqlite::Connection::open(&copy.0).unwrap();
            c.execute_batch(damage).unwrap();
            c.pragma_update(None, "journal_mode", "DELETE").unwrap();
        }
        let c = rusqlite::Connection::open(&plain.0).unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let cases: [(&Temp, &str); 5] = [
        (&random, "not a readable nubpf recording"),
        (&truncated, "not a readable nubpf recording"),
        (&wrong_version, "format 99"),
        (&missing_table, "no table `sys_enter`"),
        (&plain, "not a nubpf recording"),
    ];
    for (file, expect) in cases {
        let before = sha(&file.0);
        let out = replay(&file.0, &["--format", "json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{}: {stderr}", file.0.display());
        assert!(
            out.status.code().is_some(),
            "{}: killed by a signal",
            file.0.display()
        );
        assert!(stderr.contains(expect), "{}: {stderr}", file.0.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
        for cmd in [
            vec!["export", "-o", "/nonexistent/x.nu"],
            vec!["plot", "--probe", "sys_enter", "-o", "/nonexistent/x.svg"],
        ] {
            let out = nubpf()
                .arg(cmd[0])
                .arg(&file.0)
                .args(&cmd[1..])
                .output()
                .unwrap();
            assert_ne!(out.status.code(), Some(0));
            assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        }
        assert_eq!(sha(&file.0), before, "{} was modified", file.0.display());
    }
}

#[test]
fn a_planted_symlink_is_never_followed_and_files_belong_to_the_sudo_user() {
    if !privileged("a_planted_symlink_is_never_followed_and_files_belong_to_the_sudo_user") {
        return;
    }
    let victim = Temp::new("victim", ".txt");
    std::fs::write(&victim.0, "precious").unwrap();
    let link = Temp::new("link", ".db");
    std::os::unix::fs::symlink(&victim.0, &link.0).unwrap();
    let record_count = |to: &Path| {
        nubpf()
            .args([
                "run",
                "-e",
                r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| count }"#,
                "--duration",
                "1sec",
                "--record",
            ])
            .arg(to)
            .output()
            .unwrap()
    };
    let out = record_count(&link.0);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&victim.0).unwrap(), "precious");

    // SQLite creates its WAL file by name: a link planted there is refused as well, and the
    // half-made recording is removed.
    let db = Temp::new("walink", ".db");
    let mut wal = db.0.as_os_str().to_owned();
    wal.push("-wal");
    std::os::unix::fs::symlink(&victim.0, &wal).unwrap();
    let out = record_count(&db.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("-wal` already exists"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&victim.0).unwrap(), "precious");
    assert!(!db.0.exists(), "the half-made recording stays behind");

    // Under sudo, new files go to the invoking user with mode 0600.
    let db = Temp::new("owned", ".db");
    let started = Instant::now();
    ok(&nubpf()
        .args([
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| count }"#,
            "--duration",
            "500ms",
            "--record",
        ])
        .arg(&db.0)
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .output()
        .unwrap());
    assert!(started.elapsed() < Duration::from_secs(30));
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(&db.0).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    assert_eq!(meta.mode() & 0o777, 0o600);
}

#[test]
fn plots_are_written_as_svg_and_png() {
    if !privileged("plots_are_written_as_svg_and_png") {
        return;
    }
    let db = Temp::new("plot", ".db");
    let prefix = unique_prefix("plotfiles");
    record(
        &script_for(&prefix),
        &format!("{} open {prefix} 10", testee().display()),
        &db.0,
    );
    for (probe, ext) in [
        ("sys_exit_openat", ".svg"),
        ("sys_exit_openat", ".png"),
        ("sys_enter_openat", ".svg"),
    ] {
        let out_file = Temp::new("plot", ext);
        ok(&nubpf()
            .arg("plot")
            .arg(&db.0)
            .args(["--probe", probe, "-o"])
            .arg(&out_file.0)
            .output()
            .unwrap());
        let bytes = std::fs::read(&out_file.0).unwrap();
        if ext == ".png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            assert!(bytes.len() > 5000);
        } else {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.starts_with("<svg"), "{}", &text[..100.min(text.len())]);
            assert!(text.contains(probe), "the title names the probe");
        }
    }
}

#[test]
fn a_keyed_histogram_plots_one_key_or_all_added_up() {
    if !privileged("a_keyed_histogram_plots_one_key_or_all_added_up") {
        return;
    }
    let db = Temp::new("plotkey", ".db");
    let prefix = unique_prefix("plotkey");
    let t = testee();
    record(
        r#"bpf_tracepoint "syscalls:sys_exit_openat" {|e| if $e.comm == "testee" { hist $e.ret --by $e.pid } }"#,
        &format!(
            "sh -c '{t} open {prefix}a 3; {t} open {prefix}b 5'",
            t = t.display()
        ),
        &db.0,
    );
    let plot = |extra: &[&str]| {
        let out_file = Temp::new("plotkey", ".svg");
        let out = nubpf()
            .arg("plot")
            .arg(&db.0)
            .args(["--probe", "sys_exit_openat", "-o"])
            .arg(&out_file.0)
            .args(extra)
            .output()
            .unwrap();
        (
            out,
            std::fs::read_to_string(&out_file.0).unwrap_or_default(),
        )
    };
    let (out, all) = plot(&[]);
    ok(&out);
    assert!(all.contains("all 2 keys added up"), "{all}");
    let (out, _) = plot(&["--key", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no histogram key `[\"1\"]`"), "{stderr}");
    // The error lists the keys: the two testee pids.
    let known: Vec<String> = stderr
        .split("(it has: ")
        .nth(1)
        .unwrap_or_default()
        .trim_end()
        .trim_end_matches(')')
        .split(' ')
        .map(|k| {
            k.trim_matches(|c| c == '[' || c == ']' || c == '"')
                .to_string()
        })
        .collect();
    assert_eq!(known.len(), 2, "{stderr}");
    let (out, one) = plot(&["--key", &known[0]]);
    ok(&out);
    assert!(
        one.contains(&known[0]) && !one.contains("added up"),
        "{one}"
    );
}

#[test]
fn png_plots_draw_their_labels() {
    use nubpf_tui::app::session::plot::{PlotData, png};
    nubpf_tui::app::session::plot::register_font();
    let bars = vec![
        ("0".to_string(), 3u64),
        ("1".to_string(), 5),
        ("[2, 4)".to_string(), 1),
    ];
    let image = |title: &str| {
        png(
            &PlotData::Histogram {
                title: title.into(),
                bars: bars.clone(),
            },
            (400, 300),
        )
        .unwrap()
    };
    // Text is drawn: another title gives other pixels (a font-less backend would panic or
    // draw nothing).
    assert_ne!(image("one title"), image("another title"));
}

#[test]
fn replay_speed_paces_records_by_their_recorded_times() {
    if !privileged("replay_speed_paces_records_by_their_recorded_times") {
        return;
    }
    let db = Temp::new("speed", ".db");
    let prefix = unique_prefix("speedfiles");
    let testee = testee();
    // Two records a second apart.
    record(
        &format!(
            r#"bpf_tracepoint "syscalls:sys_enter_openat" {{|e| if $e.filename starts-with "{prefix}" {{ emit {{file: $e.filename}} }} }}"#
        ),
        &format!(
            "sh -c '{t} open {prefix}a 1; sleep 1; {t} open {prefix}b 1'",
            t = testee.display()
        ),
        &db.0,
    );
    let timed = |extra: &[&str]| {
        let started = Instant::now();
        let out = ok(&replay(&db.0, &[&["--format", "json"], extra].concat()));
        assert_eq!(out.lines().count(), 2, "{out}");
        started.elapsed()
    };
    let fastest = timed(&[]);
    let recorded = timed(&["--speed", "1"]);
    let fourfold = timed(&["--speed", "4"]);
    assert!(
        recorded >= Duration::from_millis(900),
        "--speed 1 took {recorded:?}"
    );
    assert!(
        fourfold >= Duration::from_millis(200) && fourfold < recorded / 2,
        "--speed 4 took {fourfold:?}, --speed 1 {recorded:?}"
    );
    assert!(fastest < recorded / 2, "no --speed took {fastest:?}");
}
