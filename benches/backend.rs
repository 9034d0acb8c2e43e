//! Backend benchmark: median time from IR to object bytes, and from object bytes to an
//! attached program (reusing one `Runtime`, as the product does). Run with
//! `sudo -E cargo bench --bench backend`; without root only the first figure is measured.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nubpf_ebpf::Span;
use nubpf_ebpf::ir::{
    AddrSpace, AggDecl, AggId, AggKind, Builtin, CmpOp, CtxRead, Expr, ExprKind, IntTy, Module,
    Probe, Stmt, StmtKind, Ty,
};
use nubpf_ebpf::program::Attach;
use nubpf_tui::probes::runtime::Runtime;

const S: Span = Span::new(0, 1);

/// `if pid > 1 { emit {pid, comm, file} }` plus a count by comm: about 50 instructions.
fn module() -> Module {
    let pid = || Expr::new(ExprKind::Builtin(Builtin::Pid), Ty::Int(IntTy::U32), S);
    let comm = || Expr::new(ExprKind::Builtin(Builtin::Comm), Ty::Str { cap: 16 }, S);
    let filename_ptr = Expr::new(
        ExprKind::Ctx(CtxRead::Field {
            offset: 24,
            ty: IntTy::U64,
        }),
        Ty::Int(IntTy::U64),
        S,
    );
    let file = Expr::new(
        ExprKind::ReadStr {
            space: AddrSpace::User,
            addr: Box::new(filename_ptr),
        },
        Ty::Str { cap: 64 },
        S,
    );
    let cond = Expr::new(
        ExprKind::Cmp(
            CmpOp::Gt,
            Box::new(pid()),
            Box::new(Expr::int(1, IntTy::U32, S)),
        ),
        Ty::Bool,
        S,
    );
    let body = vec![
        Stmt {
            kind: StmtKind::If {
                cond,
                then: vec![Stmt {
                    kind: StmtKind::Emit {
                        fields: vec![
                            ("pid".into(), pid()),
                            ("comm".into(), comm()),
                            ("file".into(), file),
                        ],
                    },
                    span: S,
                }],
                otherwise: vec![],
            },
            span: S,
        },
        Stmt {
            kind: StmtKind::Aggregate {
                agg: AggId(0),
                key: vec![comm()],
                value: None,
            },
            span: S,
        },
    ];
    Module {
        probes: vec![Probe {
            name: "bench".into(),
            attach: Attach::Tracepoint {
                category: "syscalls".into(),
                name: "sys_enter_openat".into(),
            },
            locals: vec![],
            body,
            span: S,
        }],
        aggregations: vec![AggDecl {
            name: "count".into(),
            probe: 0,
            kind: AggKind::Count,
            key: vec![("comm".into(), Ty::Str { cap: 16 })],
            signed: false,
            span: S,
        }],
        ..Module::default()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let m = module();
    let compiled = nubpf_ebpf::compile(&m).expect("codegen");
    println!(
        "program: {} instructions, object {} bytes",
        compiled.programs[0].code.insns.len(),
        compiled.object.len()
    );

    let runs = 2000;
    let times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(nubpf_ebpf::compile(black_box(&m)).expect("codegen"));
            t.elapsed()
        })
        .collect();
    println!(
        "IR -> object bytes: median {:?} over {runs} runs",
        median(times)
    );

    if unsafe { libc::geteuid() } != 0 {
        println!("object -> attached: skipped (needs root)");
        return;
    }
    let _ = std::process::Command::new("mount")
        .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
        .stderr(std::process::Stdio::null())
        .status();
    let t = Instant::now();
    let mut runtime = Runtime::new();
    println!(
        "runtime start (loader + BTF, once per process): {:?}",
        t.elapsed()
    );
    let compiled = Arc::new(compiled);
    let runs = 30;
    let mut attach = Vec::new();
    let mut detach = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut loaded = runtime.load(compiled.clone()).expect("load");
        loaded.attach_all().expect("attach");
        attach.push(t.elapsed());
        let t = Instant::now();
        drop(loaded);
        detach.push(t.elapsed());
    }
    println!(
        "object -> attached (maps + verify + attach): median {:?} over {runs} runs",
        median(attach)
    );
    println!("detach (drop): median {:?}", median(detach));
}
