//! Privileged backend tests: programs built from IR right here are loaded, attached and
//! triggered for real, and what they report is compared with ground truth.
//!
//! Every test skips without root, and fails instead under `NUBPF_REQUIRE_PRIVILEGED=1`.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{builtin, privileged, sp, testee, tracepoint_field_offset, unique_prefix};
use nubpf_ebpf::ir::{
    AddrSpace, AggDecl, AggId, AggKind, Builtin, CtxRead, Expr, ExprKind, IntTy, Module, Probe,
    Stmt, StmtKind, Ty,
};
use nubpf_ebpf::layout::{lhist_bucket, log2_bucket};
use nubpf_ebpf::program::Attach;
use nubpf_tui::probes::runtime::decode::Value;
use nubpf_tui::probes::runtime::maps::{AggSnapshot, Merged};
use nubpf_tui::probes::runtime::{LoadError, LoadedModule, Runtime};

fn stmt(kind: StmtKind) -> Stmt {
    Stmt {
        kind,
        span: sp(0, 1),
    }
}

fn tracepoint(name: &str) -> Attach {
    Attach::Tracepoint {
        category: "syscalls".into(),
        name: name.into(),
    }
}

fn probe(name: &str, attach: Attach, body: Vec<Stmt>) -> Probe {
    Probe {
        name: name.into(),
        attach,
        locals: vec![],
        body,
        span: sp(0, 100),
    }
}

fn count_by(key: Vec<(&str, Ty)>) -> AggDecl {
    AggDecl {
        name: "count".into(),
        probe: 0,
        kind: AggKind::Count,
        key: key.into_iter().map(|(n, t)| (n.to_string(), t)).collect(),
        signed: false,
        span: sp(0, 1),
    }
}

fn load(module: Module) -> LoadedModule {
    let compiled = Arc::new(nubpf_ebpf::compile(&module).expect("codegen"));
    let mut runtime = Runtime::new();
    match runtime.load(compiled) {
        Ok(m) => m,
        Err(LoadError::Verifier(r)) => panic!("{r}\n{}", r.log),
        Err(e) => panic!("{e}"),
    }
}

fn run_testee(args: &[&str]) -> u32 {
    let mut child = Command::new(testee())
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn testee");
    let pid = child.id();
    assert!(child.wait().expect("wait testee").success());
    pid
}

fn count_for(snapshot: &AggSnapshot, key: &[Value]) -> u64 {
    snapshot
        .entries
        .iter()
        .filter(|e| e.key == key)
        .map(|e| match e.value {
            Merged::Count(c) => c,
            other => panic!("not a count: {other:?}"),
        })
        .sum()
}

#[test]
fn tracepoint_counts_openat_per_pid_exactly() {
    if !privileged("tracepoint_counts_openat_per_pid_exactly") {
        return;
    }
    let module = Module {
        probes: vec![probe(
            "openat",
            tracepoint("sys_enter_openat"),
            vec![stmt(StmtKind::Aggregate {
                agg: AggId(0),
                key: vec![builtin(Builtin::Pid)],
                value: None,
            })],
        )],
        aggregations: vec![count_by(vec![("pid", Ty::Int(IntTy::U32))])],
        ..Module::default()
    };
    let mut loaded = load(module);
    loaded.attach_all().expect("attach");
    let n = 1000;
    let pid = run_testee(&["open", &unique_prefix("count"), &n.to_string()]);
    let aggs = loaded.read_aggregations().expect("read maps");
    assert_eq!(count_for(&aggs[0], &[Value::UInt(pid as u64)]), n);
}

#[test]
fn emit_decodes_pid_comm_and_user_filename() {
    if !privileged("emit_decodes_pid_comm_and_user_filename") {
        return;
    }
    let filename_off = tracepoint_field_offset("syscalls", "sys_enter_openat", "filename");
    let filename_ptr = Expr::new(
        ExprKind::Ctx(CtxRead::Field {
            offset: filename_off,
            ty: IntTy::U64,
        }),
        Ty::Int(IntTy::U64),
        sp(5, 9),
    );
    let filename = Expr::new(
        ExprKind::ReadStr {
            space: AddrSpace::User,
            addr: Box::new(filename_ptr),
        },
        Ty::Str { cap: 128 },
        sp(5, 9),
    );
    let module = Module {
        probes: vec![probe(
            "opens",
            tracepoint("sys_enter_openat"),
            vec![stmt(StmtKind::Emit {
                fields: vec![
                    ("pid".into(), builtin(Builtin::Pid)),
                    ("comm".into(), builtin(Builtin::Comm)),
                    ("filename".into(), filename),
                ],
            })],
        )],
        ..Module::default()
    };
    let mut loaded = load(module);
    let mut reader = loaded.take_events().expect("ring buffer");
    loaded.attach_all().expect("attach");
    let prefix = unique_prefix("emit");
    let pid = run_testee(&["open", &prefix, "5"]);
    let mut seen = Vec::new();
    reader.drain(|e| {
        if e.values.first() == Some(&Value::UInt(pid as u64)) {
            seen.push(e.values);
        }
    });
    let expect: Vec<Vec<Value>> = (0..5)
        .map(|i| {
            vec![
                Value::UInt(pid as u64),
                Value::Str("testee".into()),
                Value::Str(format!("{prefix}{i}")),
            ]
        })
        .collect();
    assert_eq!(seen, expect);
    assert_eq!(loaded.read_drops().unwrap().iter().sum::<u64>(), 0);
}

fn arg(n: u8, ty: IntTy) -> Expr {
    Expr::new(ExprKind::Ctx(CtxRead::Arg(n)), Ty::Int(ty), sp(10, 20))
}

#[test]
fn uprobe_and_uretprobe_see_exact_arguments_and_return_values() {
    if !privileged("uprobe_and_uretprobe_see_exact_arguments_and_return_values") {
        return;
    }
    let binary = testee().display().to_string();
    let symbol = "nubpf_testee_add".to_string();
    let pid_field = ("pid".to_string(), builtin(Builtin::Pid));
    let module = Module {
        probes: vec![
            probe(
                "add",
                Attach::Uprobe {
                    binary: binary.clone(),
                    symbol: symbol.clone(),
                },
                vec![stmt(StmtKind::Emit {
                    fields: vec![
                        pid_field.clone(),
                        ("a".into(), arg(0, IntTy::I64)),
                        ("b".into(), arg(1, IntTy::I64)),
                    ],
                })],
            ),
            probe(
                "add_ret",
                Attach::Uretprobe { binary, symbol },
                vec![stmt(StmtKind::Emit {
                    fields: vec![
                        pid_field,
                        (
                            "ret".into(),
                            Expr::new(
                                ExprKind::Ctx(CtxRead::RetVal),
                                Ty::Int(IntTy::I64),
                                sp(3, 4),
                            ),
                        ),
                    ],
                })],
            ),
        ],
        ..Module::default()
    };
    let mut loaded = load(module);
    let mut reader = loaded.take_events().expect("ring buffer");
    loaded.attach_all().expect("attach");
    let pid = run_testee(&["add", "-40", "7", "3"]);
    let (mut entries, mut returns) = (Vec::new(), Vec::new());
    reader.drain(|e| {
        if e.values.first() != Some(&Value::UInt(pid as u64)) {
            return;
        }
        match e.probe {
            Some(0) => entries.push((e.values[1].clone(), e.values[2].clone())),
            Some(1) => returns.push(e.values[1].clone()),
            other => panic!("unexpected probe {other:?}"),
        }
    });
    let expect_entries: Vec<_> = (0..3)
        .map(|i| (Value::Int(-40), Value::Int(7 + i)))
        .collect();
    let expect_returns: Vec<_> = (0..3).map(|i| Value::Int(-40 + 7 + i)).collect();
    assert_eq!(entries, expect_entries);
    assert_eq!(returns, expect_returns);
}

const SYS_OPENAT: u64 = 257;

/// A probe on `sys_enter` (raw or BTF-typed) counting per (pid, syscall id): `args[1]`.
fn sys_enter_counter(attach: Attach) -> Module {
    Module {
        probes: vec![probe(
            "sys_enter",
            attach,
            vec![stmt(StmtKind::Aggregate {
                agg: AggId(0),
                key: vec![builtin(Builtin::Pid), arg(1, IntTy::U64)],
                value: None,
            })],
        )],
        aggregations: vec![count_by(vec![
            ("pid", Ty::Int(IntTy::U32)),
            ("id", Ty::Int(IntTy::U64)),
        ])],
        ..Module::default()
    }
}

fn check_sys_enter_counter(attach: Attach, tag: &str) {
    let mut loaded = load(sys_enter_counter(attach));
    loaded.attach_all().expect("attach");
    let pid = run_testee(&["open", &unique_prefix(tag), "25"]);
    let aggs = loaded.read_aggregations().expect("read maps");
    let key = [Value::UInt(pid as u64), Value::UInt(SYS_OPENAT)];
    assert_eq!(count_for(&aggs[0], &key), 25);
}

#[test]
fn raw_tracepoint_attaches_and_fires() {
    if !privileged("raw_tracepoint_attaches_and_fires") {
        return;
    }
    check_sys_enter_counter(
        Attach::RawTracepoint {
            name: "sys_enter".into(),
        },
        "rawtp",
    );
}

#[test]
fn tp_btf_attaches_and_fires() {
    if !privileged("tp_btf_attaches_and_fires") {
        return;
    }
    check_sys_enter_counter(
        Attach::TpBtf {
            name: "sys_enter".into(),
        },
        "tpbtf",
    );
}

/// Runs the raw-tracepoint program of `module` once per value, with the value as `args[0]`.
fn feed(module: Module, values: &[i64]) -> Vec<AggSnapshot> {
    let mut loaded = load(module);
    for &v in values {
        loaded.test_run_raw_tp(0, &[v as u64]).expect("test run");
    }
    loaded.read_aggregations().expect("read maps")
}

fn value_agg(name: &str, kind: AggKind, index: u32) -> (AggDecl, Stmt) {
    (
        AggDecl {
            name: name.into(),
            probe: 0,
            kind,
            key: vec![],
            signed: true,
            span: sp(0, 1),
        },
        stmt(StmtKind::Aggregate {
            agg: AggId(index),
            key: vec![],
            value: Some(arg(0, IntTy::I64)),
        }),
    )
}

#[test]
fn histograms_and_value_aggregations_are_exact() {
    if !privileged("histograms_and_value_aggregations_are_exact") {
        return;
    }
    let lhist = AggKind::Lhist {
        min: 0,
        max: 100,
        step: 10,
    };
    let kinds = [
        ("hist", AggKind::Hist),
        ("lhist", lhist),
        ("sum", AggKind::Sum),
        ("min", AggKind::Min),
        ("max", AggKind::Max),
        ("avg", AggKind::Avg),
    ];
    let (aggregations, body): (Vec<_>, Vec<_>) = kinds
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| value_agg(name, *kind, i as u32))
        .unzip();
    let module = Module {
        probes: vec![probe(
            "values",
            Attach::RawTracepoint {
                name: "sys_enter".into(),
            },
            body,
        )],
        aggregations,
        ..Module::default()
    };
    let values = [
        -3,
        0,
        1,
        2,
        3,
        4,
        7,
        8,
        9,
        15,
        16,
        99,
        100,
        250,
        1023,
        1024,
        4096,
        65535,
        65536,
        (1 << 32) - 1,
        1 << 32,
        (1 << 32) + 1,
        1 << 40,
        1 << 62,
    ];
    let aggs = feed(module, &values);

    let buckets = |snapshot: &AggSnapshot| -> Vec<(u64, u64)> {
        snapshot
            .entries
            .iter()
            .map(|e| match e.value {
                Merged::Count(c) => (e.bucket.unwrap(), c),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let expected = |f: &dyn Fn(i64) -> u64| {
        let mut m = std::collections::BTreeMap::new();
        for &v in &values {
            *m.entry(f(v)).or_insert(0u64) += 1;
        }
        m.into_iter().collect::<Vec<_>>()
    };
    assert_eq!(buckets(&aggs[0]), expected(&log2_bucket));
    assert_eq!(
        buckets(&aggs[1]),
        expected(&|v| lhist_bucket(v, 0, 100, 10))
    );
    let sum: i128 = values.iter().map(|&v| v as i128).sum();
    assert_eq!(aggs[2].entries[0].value, Merged::Sum(sum));
    assert_eq!(aggs[3].entries[0].value, Merged::Min(-3));
    assert_eq!(aggs[4].entries[0].value, Merged::Max(1 << 62));
    assert_eq!(
        aggs[5].entries[0].value,
        Merged::Avg {
            count: values.len() as u64,
            sum
        }
    );
}

#[test]
fn verifier_rejection_maps_to_the_instruction_and_its_span() {
    if !privileged("verifier_rejection_maps_to_the_instruction_and_its_span") {
        return;
    }
    // Tracepoint programs may not read the common header (offsets below 8): the verifier
    // rejects the load of `common_type`.
    let bad_span = sp(40, 52);
    let bad = Expr::new(
        ExprKind::Ctx(CtxRead::Field {
            offset: 0,
            ty: IntTy::U16,
        }),
        Ty::Int(IntTy::U16),
        bad_span,
    );
    let module = Module {
        probes: vec![probe(
            "bad",
            tracepoint("sys_enter_openat"),
            vec![stmt(StmtKind::Aggregate {
                agg: AggId(0),
                key: vec![bad],
                value: None,
            })],
        )],
        aggregations: vec![count_by(vec![("t", Ty::Int(IntTy::U16))])],
        ..Module::default()
    };
    let compiled = Arc::new(nubpf_ebpf::compile(&module).unwrap());
    let ldx_index = compiled.programs[0]
        .code
        .insns
        .iter()
        .position(|i| i.class() == nubpf_ebpf::insn::class::LDX && i.src == 6)
        .expect("the ctx load");
    let err = Runtime::new().load(compiled).expect_err("must be rejected");
    let LoadError::Verifier(rejection) = err else {
        panic!("expected a verifier rejection, got {err}");
    };
    assert_eq!(rejection.insn, Some(ldx_index), "{}", rejection.log);
    assert_eq!(rejection.span, Some(bad_span));
    assert!(
        rejection.message.contains("invalid bpf_context access"),
        "{}",
        rejection.message
    );
}

#[path = "../ebpf/tests/cases.rs"]
mod cases;

#[test]
fn every_codegen_case_passes_the_verifier() {
    if !privileged("every_codegen_case_passes_the_verifier") {
        return;
    }
    let mut runtime = Runtime::new();
    for (name, module) in cases::all() {
        let compiled = Arc::new(nubpf_ebpf::compile(&module).expect("codegen"));
        if let Err(e) = runtime.load(compiled) {
            match e {
                LoadError::Verifier(r) => panic!("{name}: {r}\n{}", r.log),
                e => panic!("{name}: {e}"),
            }
        }
    }
}

#[test]
fn perf_event_samples_a_busy_process() {
    if !privileged("perf_event_samples_a_busy_process") {
        return;
    }
    let module = Module {
        probes: vec![probe(
            "profile",
            Attach::PerfEvent { hz: 199 },
            vec![stmt(StmtKind::Aggregate {
                agg: AggId(0),
                key: vec![builtin(Builtin::Pid)],
                value: None,
            })],
        )],
        aggregations: vec![count_by(vec![("pid", Ty::Int(IntTy::U32))])],
        ..Module::default()
    };
    let mut loaded = load(module);
    loaded.attach_all().expect("attach");
    let pid = run_testee(&["spin", "400"]);
    let aggs = loaded.read_aggregations().expect("read maps");
    // 400 ms on a CPU at 199 Hz is about 80 samples; scheduling noise aside, clearly many.
    let samples = count_for(&aggs[0], &[Value::UInt(pid as u64)]);
    assert!(samples >= 10, "only {samples} samples of a busy process");
}

/// Whether this kernel loads fentry/fexit programs (this machine's kernel refuses them with
/// EPERM; stock distro kernels allow them).
fn fentry_refused(e: &LoadError) -> bool {
    match e {
        LoadError::Verifier(r) => r.io_error.raw_os_error() == Some(libc::EPERM),
        LoadError::Program { source, .. } => source.to_string().contains("Operation not permitted"),
        _ => false,
    }
}

#[test]
fn every_front_end_ok_case_passes_the_verifier() {
    if !privileged("every_front_end_ok_case_passes_the_verifier") {
        return;
    }
    use nubpf_tui::probes::catalogue::Catalogue;
    use nubpf_tui::probes::front;
    let catalogue = Catalogue::system();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/front/ok");
    let mut runtime = Runtime::new();
    let mut loaded = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let source = std::fs::read_to_string(entry.path()).unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let (script, diags) = front::compile(&source, &catalogue);
        let script = script.unwrap_or_else(|| panic!("{name}: {diags:?}"));
        let fentry = script
            .compiled
            .programs
            .iter()
            .any(|p| matches!(p.attach, Attach::Fentry { .. } | Attach::Fexit { .. }));
        match runtime.load(script.compiled.clone()) {
            Ok(_) => loaded += 1,
            Err(e) if fentry && fentry_refused(&e) => {
                eprintln!("{name}: this kernel refuses fentry/fexit programs (EPERM)");
            }
            Err(LoadError::Verifier(r)) => panic!("{name}: {r}\n{}", r.log),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert!(loaded >= 40, "only {loaded} cases loaded");
}

// ---- kernel functions: kprobes and fentry (a stock distro kernel; see tests/vm) ----------

/// True when this kernel has kprobes and loads fentry programs. Otherwise the test skips,
/// unless `NUBPF_REQUIRE_KPROBES=1` (set for the VM run), which turns the skip into a failure.
fn kernel_functions(test: &str) -> bool {
    if !privileged(test) {
        return false;
    }
    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let fentry = nubpf_tui::probes::runtime::features::Probed::probe(&mut Runtime::new()).fentry;
    if kprobes && fentry {
        return true;
    }
    if std::env::var("NUBPF_REQUIRE_KPROBES").as_deref() == Ok("1") {
        panic!("{test}: NUBPF_REQUIRE_KPROBES=1 but kprobes={kprobes} fentry={fentry}");
    }
    eprintln!("skipping {test}: this kernel lacks kprobes or fentry (run it in tests/vm)");
    false
}

/// What a mechanism's run produced: its name, the testee's pid, records, aggregations.
type RunCheck<'a> = dyn Fn(&str, u32, &[Vec<Value>], &[AggSnapshot]) + 'a;

/// Compiles `source`, loads it through kprobes and through fentry in turn, runs the testee
/// with `args` each time, and hands each run's records and aggregations to `check`.
fn both_mechanisms(source: &str, args: &[&str], check: &RunCheck) {
    use nubpf_tui::probes::catalogue::Catalogue;
    use nubpf_tui::probes::front;
    let (script, diags) = front::compile(source, &Catalogue::system());
    let kprobe_script = script.unwrap_or_else(|| panic!("{diags:?}"));
    let mut fentry_script = kprobe_script.clone();
    assert!(
        fentry_script.use_fentry().unwrap(),
        "nothing to switch to fentry"
    );
    for (mechanism, script) in [("kprobe", &kprobe_script), ("fentry", &fentry_script)] {
        let mut runtime = Runtime::new();
        let mut loaded = match runtime.load(script.compiled.clone()) {
            Ok(m) => m,
            Err(LoadError::Verifier(r)) => panic!("{mechanism}: {r}\n{}", r.log),
            Err(e) => panic!("{mechanism}: {e}"),
        };
        let mut reader = loaded.take_events();
        loaded
            .attach_all()
            .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        let pid = run_testee(args);
        let mut records = Vec::new();
        if let Some(r) = reader.as_mut() {
            r.drain(|e| records.push(e.values));
        }
        let aggs = loaded.read_aggregations().expect("read maps");
        check(mechanism, pid, &records, &aggs);
    }
}

#[test]
fn kprobe_and_fentry_read_named_arguments_and_strings() {
    if !kernel_functions("kprobe_and_fentry_read_named_arguments_and_strings") {
        return;
    }
    // The seed's first example, on the function openat reaches on every kernel: do_sys_open
    // itself is inlined into the open syscalls on Debian 6.1 and never fires there.
    let source = r#"bpf_kprobe "do_sys_openat2" {|ctx| if $ctx.filename == "secret.txt" { emit($ctx.pid) } }"#;
    both_mechanisms(
        source,
        &["openpath", "secret.txt", "7"],
        &|mechanism, pid, records, _| {
            let mine = records
                .iter()
                .filter(|r| r == &&vec![Value::UInt(pid as u64)])
                .count();
            assert_eq!(mine, 7, "{mechanism}: {records:?}");
        },
    );
}

#[test]
fn a_char_pointer_into_kernel_memory_reads_as_a_string() {
    if !kernel_functions("a_char_pointer_into_kernel_memory_reads_as_a_string") {
        return;
    }
    // symlink(2) copies its target into the kernel before calling vfs_symlink, so `oldname`
    // is a kernel pointer: the user-memory read faults and the kernel read must take over.
    let target = unique_prefix("symtarget");
    // On bpffs: an overlay file system would call vfs_symlink again for its upper layer.
    let link = format!("/sys/fs/bpf/nubpf-link-{}", std::process::id());
    both_mechanisms(
        r#"bpf_kprobe "vfs_symlink" {|ctx| if $ctx.comm == "testee" { emit {target: $ctx.oldname} } }"#,
        &["symlink", &target, &link, "4"],
        &|mechanism, _, records, _| {
            assert_eq!(
                records,
                vec![vec![Value::Str(target.clone())]; 4],
                "{mechanism}"
            );
        },
    );
}

#[test]
fn seed_first_example_verbatim_loads_and_attaches() {
    if !kernel_functions("seed_first_example_verbatim_loads_and_attaches") {
        return;
    }
    let source =
        r#"bpf_kprobe "do_sys_open" {|ctx| if $ctx.filename == "secret.txt" { emit($ctx.pid) } }"#;
    // do_sys_open is inlined into its callers on this kernel: attaching works, events do
    // not come (the do_sys_openat2 test above shows the same probe firing).
    both_mechanisms(source, &["openpath", "secret.txt", "1"], &|_, _, _, _| {});
}

#[test]
fn a_function_that_refuses_fentry_falls_back_to_its_kprobe_alone() {
    if !kernel_functions("a_function_that_refuses_fentry_falls_back_to_its_kprobe_alone") {
        return;
    }
    // do_mmap has nine parameters: x86 trampolines before 6.6 take at most six, so fentry
    // refuses it at attach time while a kprobe takes it (Debian's 6.1 here). do_sys_openat2
    // takes fentry. Each probe gets the mechanism that works for its own function, and both
    // count exactly.
    let (size, maps) = (12 * 4096, 6);
    let out = Command::new(env!("CARGO_BIN_EXE_nubpf-tui"))
        .args([
            "run",
            "-e",
            &format!(
                r#"bpf_kprobe "do_mmap" {{|ctx| if $ctx.comm == "testee" and $ctx.len == {size} {{ count --as maps }} }}
bpf_kprobe "do_sys_openat2" {{|ctx| if $ctx.comm == "testee" {{ count --as opens }} }}"#
            ),
            "--format",
            "json",
            "-c",
            &format!("{} mmap {size} {maps}", testee().display()),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let six_args_only = release.starts_with("6.1.") || release.starts_with("5.");
    if six_args_only || stderr.contains("do_mmap: fentry refused") {
        assert!(stderr.contains("do_mmap: fentry refused"), "{stderr}");
        assert!(stderr.contains("(kprobe:do_mmap)"), "{stderr}");
    } else {
        assert!(stderr.contains("(fentry:do_mmap)"), "{stderr}");
    }
    assert!(stderr.contains("(fentry:do_sys_openat2)"), "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l == format!("{{\"aggregation\":\"maps\",\"count\":{maps}}}")),
        "{stdout}"
    );
    // The static testee opens nothing by itself.
    assert!(
        !stdout.contains("\"opens\"") || stdout.contains("\"aggregation\":\"opens\",\"count\":0}"),
        "{stdout}"
    );
}

#[test]
fn kprobe_and_fentry_vfs_read_count_and_kretprobe_fexit_retval() {
    if !kernel_functions("kprobe_and_fentry_vfs_read_count_and_kretprobe_fexit_retval") {
        return;
    }
    let size = 3000u64;
    let reads = 11u64;
    let source = r#"bpf_kprobe "vfs_read" {|ctx| if $ctx.comm == "testee" { sum $ctx.count --as bytes_asked } }
bpf_kretprobe "vfs_read" {|ctx| if $ctx.comm == "testee" { sum $ctx.retval --as bytes_read; count --as reads } }"#;
    let (n, s) = (reads.to_string(), size.to_string());
    both_mechanisms(
        source,
        &["read", "/dev/zero", &n, &s],
        &|mechanism, _, _, aggs| {
            let get = |name: &str| {
                aggs.iter()
                    .find(|a| a.name == name)
                    .and_then(|a| a.entries.first())
                    .map(|e| e.value.value())
                    .unwrap_or_else(|| panic!("{mechanism}: no {name} in {aggs:?}"))
            };
            assert_eq!(get("bytes_asked"), (reads * size) as i128, "{mechanism}");
            assert_eq!(get("bytes_read"), (reads * size) as i128, "{mechanism}");
            assert_eq!(get("reads"), reads as i128, "{mechanism}");
        },
    );
}

#[test]
fn fentry_and_fexit_typed_arguments_and_struct_fields() {
    if !kernel_functions("fentry_and_fexit_typed_arguments_and_struct_fields") {
        return;
    }
    use nubpf_tui::probes::catalogue::Catalogue;
    use nubpf_tui::probes::front;
    let source = r#"bpf_fentry "vfs_read" {|ctx| if $ctx.comm == "testee" { emit {count: $ctx.count, name: $ctx.file.f_path.dentry.d_name.name} } }
bpf_fexit "vfs_read" {|ctx| if $ctx.comm == "testee" { emit {ret: $ctx.retval} } }"#;
    let (script, diags) = front::compile(source, &Catalogue::system());
    let script = script.unwrap_or_else(|| panic!("{diags:?}"));
    let mut loaded = load_compiled(script.compiled.clone());
    let mut reader = loaded.take_events().unwrap();
    loaded.attach_all().expect("attach");
    run_testee(&["read", "/dev/zero", "3", "512"]);
    let mut entries = Vec::new();
    let mut returns = Vec::new();
    reader.drain(|e| match e.probe {
        Some(0) => entries.push(e.values),
        _ => returns.push(e.values),
    });
    assert_eq!(
        entries,
        vec![vec![Value::UInt(512), Value::Str("zero".into())]; 3]
    );
    assert_eq!(returns, vec![vec![Value::Int(512)]; 3]);
}

fn load_compiled(compiled: Arc<nubpf_ebpf::Compiled>) -> LoadedModule {
    match Runtime::new().load(compiled) {
        Ok(m) => m,
        Err(LoadError::Verifier(r)) => panic!("{r}\n{}", r.log),
        Err(e) => panic!("{e}"),
    }
}

/// `run`s the brief's last example in the form `source` gives, with the testee reading
/// `reads` times under `-c`. Pids start after `first_pid`: the seed filters `pid > 1000`, and
/// a fresh VM's pids are lower. Returns the testee's pid and `run`'s output.
fn run_seed_last_example(source: &str, reads: u32, first_pid: u32) -> (u32, std::process::Output) {
    let _ = std::fs::write("/proc/sys/kernel/ns_last_pid", first_pid.to_string());
    let out = Command::new(env!("CARGO_BIN_EXE_nubpf-tui"))
        .args([
            "run",
            "-e",
            source,
            "--format",
            "json",
            "-c",
            &format!("{} read /dev/zero {reads} 100", testee().display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (common::started_pid(&out), out)
}

#[test]
fn seed_last_example_in_todays_nushell_counts_per_pid() {
    if !kernel_functions("seed_last_example_in_todays_nushell_counts_per_pid") {
        return;
    }
    let (pid, out) = run_seed_last_example(
        r#"bpf_kprobe "vfs_read" {|ctx| emit($ctx.pid) } | where pid > 1000 | group-by pid --to-table | each {|group| {pid: $group.pid, count: ($group.items | length)}}"#,
        9,
        20000,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("through fentry") || stderr.contains("kprobe:vfs_read"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // `group-by` keys are strings in Nushell.
    assert!(
        stdout
            .lines()
            .any(|l| l == format!("{{\"pid\":\"{pid}\",\"count\":9}}")),
        "{stdout}"
    );
}

#[test]
fn seed_last_example_as_the_brief_writes_it_groups_per_pid() {
    if !kernel_functions("seed_last_example_as_the_brief_writes_it_groups_per_pid") {
        return;
    }
    // `group-by pid` (no `each`) is a record of pid → that pid's records in Nushell 0.115.
    let (pid, out) = run_seed_last_example(
        r#"bpf_kprobe "vfs_read" {|ctx| emit($ctx.pid) } | where pid > 1000 | group-by pid"#,
        6,
        21000,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mine = format!("{{\"pid\":{pid}}}");
    let group = stdout
        .split(&format!("\"{pid}\":["))
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no group for {pid}: {stdout}"));
    assert_eq!(group.matches(&mine).count(), 6, "{group}");
}

// ---- arrays: a constant index into a tracepoint array field and a BTF struct array ------

fn compile_and_load(source: &str) -> LoadedModule {
    use nubpf_tui::probes::catalogue::Catalogue;
    use nubpf_tui::probes::front;
    let (script, diags) = front::compile(source, &Catalogue::system());
    let script = script.unwrap_or_else(|| panic!("{diags:?}"));
    load_compiled(script.compiled.clone())
}

#[test]
fn tracepoint_array_field_indexed_by_a_constant() {
    if !privileged("tracepoint_array_field_indexed_by_a_constant") {
        return;
    }
    // raw_syscalls:sys_enter carries `unsigned long args[6]`; read(2)'s count is args.2.
    let mut loaded = compile_and_load(
        r#"bpf_tracepoint "raw_syscalls:sys_enter" {|e| if $e.id == 0 { count --by {pid: $e.pid, size: $e.args.2} } }"#,
    );
    loaded.attach_all().expect("attach");
    let pid = run_testee(&["read", "/dev/zero", "9", "4321"]);
    let aggs = loaded.read_aggregations().expect("read maps");
    let mine: Vec<_> = aggs[0]
        .entries
        .iter()
        .filter(|e| e.key[0] == Value::UInt(pid as u64))
        .map(|e| (e.key[1].clone(), e.value))
        .collect();
    assert_eq!(mine, vec![(Value::UInt(4321), Merged::Count(9))]);
}

#[test]
fn btf_struct_array_member_indexed_by_a_constant() {
    if !privileged("btf_struct_array_member_indexed_by_a_constant") {
        return;
    }
    // sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm):
    // the first bytes of the binary being executed are bprm->buf[0..4], "\x7fELF" for the
    // testee, and its new comm starts with 't'.
    let mut loaded = compile_and_load(
        r#"bpf_raw_tracepoint "sched_process_exec" {|ctx| emit {pid: $ctx.pid, b0: $ctx.arg2.buf.0, b1: $ctx.arg2.buf.1, b2: $ctx.arg2.buf.2, b3: $ctx.arg2.buf.3, c0: $ctx.arg0.comm.0} }"#,
    );
    let mut reader = loaded.take_events().unwrap();
    loaded.attach_all().expect("attach");
    let pid = run_testee(&["getpid", "1"]);
    let mut records = Vec::new();
    reader.drain(|e| records.push(e.values));
    let mine: Vec<_> = records
        .into_iter()
        .filter(|r| r[0] == Value::UInt(pid as u64))
        .collect();
    // `char` is signed on 6.1 and unsigned since 6.2 (the kernel builds with
    // -funsigned-char): BTF says which, so the bytes come back as Int or UInt; compare values.
    let numbers = |r: &Vec<Value>| -> Vec<i128> {
        r.iter()
            .map(|v| match v {
                Value::Int(i) => *i as i128,
                Value::UInt(u) => *u as i128,
                other => panic!("not an integer: {other:?}"),
            })
            .collect()
    };
    assert_eq!(
        mine.iter().map(numbers).collect::<Vec<_>>(),
        vec![vec![
            pid as i128,
            0x7f,
            b'E' as i128,
            b'L' as i128,
            b'F' as i128,
            b't' as i128,
        ]]
    );
}

#[test]
fn info_says_what_this_kernel_supports() {
    if !privileged("info_says_what_this_kernel_supports") {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_nubpf-tui"))
        .arg("info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("no `{key}` in:\n{text}"))
            .trim()
            .to_string()
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(line("kernel:"), release.trim());
    // Ground truth from the kernel itself: the kprobe PMU, and whether fentry loads.
    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    assert_eq!(
        line("kprobe, kretprobe:").starts_with("yes"),
        kprobes,
        "{text}"
    );
    let fentry = nubpf_tui::probes::runtime::features::Probed::probe(&mut Runtime::new()).fentry;
    assert_eq!(line("fentry, fexit:") == "yes", fentry, "{text}");
    let through = line("bpf_kprobe attaches through:");
    match (fentry, kprobes) {
        (true, _) => assert!(through.starts_with("fentry"), "{through}"),
        (false, true) => assert_eq!(through, "kprobe"),
        (false, false) => assert!(through.starts_with("nothing"), "{through}"),
    }
    assert_eq!(line("ring buffer:"), "yes");
    assert_eq!(line("tracepoint:"), "yes");
}

#[test]
fn the_kernel_creates_every_map_kind_the_backend_writes() {
    if !privileged("the_kernel_creates_every_map_kind_the_backend_writes") {
        return;
    }
    let (object, maps) = common::every_map_kind_object();
    let mut ebpf = aya::Ebpf::load(&object).expect("aya loads the object and creates its maps");
    for def in &maps {
        let map = ebpf
            .map(&def.name)
            .unwrap_or_else(|| panic!("no map {}", def.name));
        let kind = match map {
            aya::maps::Map::HashMap(_) => nubpf_ebpf::maps::MapKind::Hash,
            aya::maps::Map::Array(_) => nubpf_ebpf::maps::MapKind::Array,
            aya::maps::Map::PerCpuHashMap(_) => nubpf_ebpf::maps::MapKind::PerCpuHash,
            aya::maps::Map::PerCpuArray(_) => nubpf_ebpf::maps::MapKind::PerCpuArray,
            aya::maps::Map::RingBuf(_) => nubpf_ebpf::maps::MapKind::RingBuf,
            other => panic!("{}: unexpected {other:?}", def.name),
        };
        assert_eq!(kind, def.kind, "{}", def.name);
    }
    // The program referencing all of them passes the verifier.
    let program: &mut aya::programs::RawTracePoint =
        ebpf.program_mut("every_map").unwrap().try_into().unwrap();
    program.load().expect("the verifier accepts the program");
}

#[test]
fn interval_fires_at_its_period() {
    if !privileged("interval_fires_at_its_period") {
        return;
    }
    // Every 50 ms on one CPU: about 20 ticks in a second.
    let mut loaded = compile_and_load(r#"bpf_interval 50ms {|| count --as ticks }"#);
    loaded.attach_all().expect("attach");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let aggs = loaded.read_aggregations().expect("read maps");
    let ticks = aggs[0].entries.first().map_or(0, |e| e.value.value());
    assert!(
        (10..=30).contains(&ticks),
        "{ticks} ticks in a second at 50 ms"
    );
}
