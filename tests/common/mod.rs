//! Shared helpers of the integration tests: the privilege gate, tracefs, the traced
//! workload binary, and small IR constructors.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nubpf_ebpf::Span;
use nubpf_ebpf::ir::{Builtin, Expr, ExprKind, IntTy, Ty};

/// True when the test may load programs. Without root it prints why it skips, unless
/// `NUBPF_REQUIRE_PRIVILEGED=1`, which turns the skip into a failure.
pub fn privileged(test: &str) -> bool {
    if unsafe { libc::geteuid() } == 0 {
        ensure_tracefs();
        return true;
    }
    if std::env::var("NUBPF_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("{test}: NUBPF_REQUIRE_PRIVILEGED=1 but not running as root");
    }
    eprintln!("skipping {test}: loading eBPF programs needs root (CAP_BPF and CAP_PERFMON)");
    false
}

pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Mounts tracefs when it is not mounted (it is not at boot on this machine kind).
pub fn ensure_tracefs() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if Path::new(TRACEFS).join("events").exists() {
            return;
        }
        let status = Command::new("mount")
            .args(["-t", "tracefs", "tracefs", TRACEFS])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "tracefs is not mounted at {TRACEFS} and mounting it failed"
        );
    });
}

/// The offset of `field` in a tracepoint's format file.
pub fn tracepoint_field_offset(category: &str, name: &str, field: &str) -> u16 {
    let path = format!("{TRACEFS}/events/{category}/{name}/format");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for line in text.lines() {
        let Some(decl) = line.trim().strip_prefix("field:") else {
            continue;
        };
        let decl = decl.split(';').next().unwrap_or("");
        if decl.trim_end().ends_with(&format!(" {field}"))
            || decl.trim_end().ends_with(&format!("*{field}"))
        {
            let off = line
                .split("offset:")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap();
            return off.trim().parse().unwrap();
        }
    }
    panic!("no field {field} in {path}");
}

/// The static workload binary, built once per test process into the target directory.
pub fn testee() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("testee");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/testee.c");
        let status = Command::new("cc")
            .args(["-O1", "-static", "-fno-omit-frame-pointer", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("running cc (install build-essential)");
        assert!(status.success(), "building the testee failed");
        out
    })
    .clone()
}

/// The pid of the `-c` command, from `run`'s "started `…` (pid N)" line.
pub fn started_pid(out: &std::process::Output) -> u32 {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|l| l.split("(pid ").nth(1)?.strip_suffix(')')?.parse().ok())
        .unwrap_or_else(|| panic!("no started pid in:\n{stderr}"))
}

/// A unique prefix for nonexistent paths this test opens.
pub fn unique_prefix(tag: &str) -> String {
    format!(
        "/tmp/nubpf-{tag}-{}-{}-",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

pub fn sp(start: u32, end: u32) -> Span {
    Span::new(start, end)
}

pub fn builtin(b: Builtin) -> Expr {
    let ty = match b {
        Builtin::Comm => Ty::Str { cap: 16 },
        Builtin::Pid | Builtin::Tid | Builtin::Uid | Builtin::Gid | Builtin::Cpu => {
            Ty::Int(IntTy::U32)
        }
        Builtin::Ktime => Ty::Int(IntTy::U64),
    };
    Expr::new(ExprKind::Builtin(b), ty, sp(1, 2))
}

/// Our programs currently loaded in the kernel (names start with `p<digit>_`).
pub fn our_programs() -> std::collections::BTreeSet<u32> {
    aya::programs::loaded_programs()
        .flatten()
        .filter(|p| {
            p.name_as_str().is_some_and(|n| {
                n.starts_with('p') && n[1..].starts_with(|c: char| c.is_ascii_digit())
            })
        })
        .map(|p| p.id())
        .collect()
}

/// Links currently attaching one of our programs (see [`our_programs`]), as the kernel
/// lists them (what `bpftool link list` shows).
pub fn our_links() -> std::collections::BTreeSet<u32> {
    let programs = our_programs();
    aya::programs::loaded_links()
        .flatten()
        .filter(|l| programs.contains(&l.program_id()))
        .map(|l| l.id())
        .collect()
}

/// A raw tracepoint program that references one map of every kind the backend knows.
pub fn every_map_kind_object() -> (Vec<u8>, Vec<nubpf_ebpf::maps::MapDef>) {
    use nubpf_ebpf::asm::Asm;
    use nubpf_ebpf::elf::{ObjectProgram, write};
    use nubpf_ebpf::insn::{Insn, Reg};
    use nubpf_ebpf::maps::{BPF_F_NO_PREALLOC, MapDef, MapId, MapKind};
    let def = |name: &str, kind, key_size, value_size, max_entries, flags| MapDef {
        name: name.into(),
        kind,
        key_size,
        value_size,
        max_entries,
        flags,
    };
    let maps = vec![
        def("hash", MapKind::Hash, 8, 8, 64, BPF_F_NO_PREALLOC),
        def("array", MapKind::Array, 4, 16, 4, 0),
        def(
            "pcpu_hash",
            MapKind::PerCpuHash,
            4,
            8,
            64,
            BPF_F_NO_PREALLOC,
        ),
        def("pcpu_array", MapKind::PerCpuArray, 4, 8, 2, 0),
        def("ring", MapKind::RingBuf, 0, 0, 4096, 0),
    ];
    let mut asm = Asm::new();
    for i in 0..maps.len() {
        asm.ld_map(Reg::R1, MapId(i as u32));
    }
    asm.emit(Insn::mov64_imm(Reg::R0, 0));
    asm.emit(Insn::exit());
    let code = asm.finish().unwrap();
    let object = write(
        &[ObjectProgram {
            name: "every_map",
            section: "raw_tp/sys_enter",
            insns: &code.insns,
            map_refs: &code.map_refs,
        }],
        &maps,
    );
    (object, maps)
}
