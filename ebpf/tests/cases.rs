//! Codegen cases: one small IR snippet per feature. `golden.rs` snapshots their IR and
//! disassembly; the privileged suite (`tests/kernel.rs` at the root) loads every one of them
//! into the kernel to prove the verifier accepts them. No kernel or BTF input: offsets are
//! made up (they are valid `syscalls:sys_enter_openat` context offsets) and fixed here.
#![allow(dead_code)]

use nubpf_ebpf::Span;
use nubpf_ebpf::ir::{
    AddrSpace, AggDecl, AggId, AggKind, BinOp, Builtin, CmpOp, CtxRead, Expr, ExprKind, IntTy,
    LocalId, Module, Probe, Stmt, StmtKind, StrOp, Ty, UnOp,
};
use nubpf_ebpf::program::Attach;

const S: Span = Span::new(0, 1);

fn ex(kind: ExprKind, ty: Ty) -> Expr {
    Expr::new(kind, ty, S)
}
fn int(v: i64) -> Expr {
    Expr::int(v, IntTy::I64, S)
}
fn b(e: Expr) -> Box<Expr> {
    Box::new(e)
}
fn pid() -> Expr {
    ex(ExprKind::Builtin(Builtin::Pid), Ty::Int(IntTy::U32))
}
fn comm() -> Expr {
    ex(ExprKind::Builtin(Builtin::Comm), Ty::Str { cap: 16 })
}
fn field(offset: u16, ty: IntTy) -> Expr {
    ex(ExprKind::Ctx(CtxRead::Field { offset, ty }), Ty::Int(ty))
}
fn arg(n: u8, ty: IntTy) -> Expr {
    ex(ExprKind::Ctx(CtxRead::Arg(n)), Ty::Int(ty))
}
fn user_str(addr: Expr, cap: u16) -> Expr {
    ex(
        ExprKind::ReadStr {
            space: AddrSpace::User,
            addr: b(addr),
        },
        Ty::Str { cap },
    )
}
fn st(kind: StmtKind) -> Stmt {
    Stmt { kind, span: S }
}
fn emit(fields: Vec<(&str, Expr)>) -> Stmt {
    st(StmtKind::Emit {
        fields: fields
            .into_iter()
            .map(|(n, e)| (n.to_string(), e))
            .collect(),
    })
}
fn agg(index: u32, key: Vec<Expr>, value: Option<Expr>) -> Stmt {
    st(StmtKind::Aggregate {
        agg: AggId(index),
        key,
        value,
    })
}
fn decl(name: &str, kind: AggKind, key: Vec<(&str, Ty)>) -> AggDecl {
    AggDecl {
        name: name.into(),
        probe: 0,
        kind,
        key: key.into_iter().map(|(n, t)| (n.into(), t)).collect(),
        signed: true,
        span: S,
    }
}
fn tracepoint() -> Attach {
    Attach::Tracepoint {
        category: "syscalls".into(),
        name: "sys_enter_openat".into(),
    }
}
fn module(attach: Attach, locals: Vec<Ty>, body: Vec<Stmt>, aggs: Vec<AggDecl>) -> Module {
    Module {
        probes: vec![Probe {
            name: "t".into(),
            attach,
            locals,
            body,
            span: S,
        }],
        aggregations: aggs,
        ..Module::default()
    }
}

/// The cases, named.
pub struct Cases(pub Vec<(String, Module)>);

impl Cases {
    fn add(&mut self, name: &str, m: Module) {
        self.0.push((name.to_string(), m));
    }
}

pub fn all() -> Vec<(String, Module)> {
    let mut c = Cases(Vec::new());
    count_unkeyed(&mut c);
    count_by_pid(&mut c);
    count_by_comm_zeroes_the_key(&mut c);
    emit_pid_and_comm(&mut c);
    emit_user_string_reads_into_the_record(&mut c);
    string_equals_literal(&mut c);
    string_starts_with_in_scratch(&mut c);
    string_ends_with_loops_over_the_length(&mut c);
    if_else_and_return(&mut c);
    arithmetic_and_bit_operations(&mut c);
    signed_division_and_modulo(&mut c);
    locals_of_every_kind(&mut c);
    sum_min_max_avg(&mut c);
    log2_histogram(&mut c);
    linear_histogram(&mut c);
    data_loc_and_inline_strings(&mut c);
    pointer_reads_user_kernel_and_either(&mut c);
    uprobe_arguments_and_return_value(&mut c);
    raw_tracepoint_arguments(&mut c);
    boolean_logic_short_circuits(&mut c);
    narrow_signed_fields_are_sign_extended(&mut c);
    two_probes_share_the_ring_buffer(&mut c);
    c.0
}

fn count_unkeyed(c: &mut Cases) {
    c.add(
        "count_unkeyed",
        module(
            tracepoint(),
            vec![],
            vec![agg(0, vec![], None)],
            vec![decl("count", AggKind::Count, vec![])],
        ),
    );
}

fn count_by_pid(c: &mut Cases) {
    c.add(
        "count_by_pid",
        module(
            tracepoint(),
            vec![],
            vec![agg(0, vec![pid()], None)],
            vec![decl(
                "count",
                AggKind::Count,
                vec![("pid", Ty::Int(IntTy::U32))],
            )],
        ),
    );
}

fn count_by_comm_zeroes_the_key(c: &mut Cases) {
    c.add(
        "count_by_comm",
        module(
            tracepoint(),
            vec![],
            vec![agg(0, vec![comm()], None)],
            vec![decl(
                "count",
                AggKind::Count,
                vec![("comm", Ty::Str { cap: 16 })],
            )],
        ),
    );
}

fn emit_pid_and_comm(c: &mut Cases) {
    c.add(
        "emit_pid_comm",
        module(
            tracepoint(),
            vec![],
            vec![emit(vec![("pid", pid()), ("comm", comm())])],
            vec![],
        ),
    );
}

fn emit_user_string_reads_into_the_record(c: &mut Cases) {
    c.add(
        "emit_user_string",
        module(
            tracepoint(),
            vec![],
            vec![emit(vec![("file", user_str(field(24, IntTy::U64), 64))])],
            vec![],
        ),
    );
}

fn string_equals_literal(c: &mut Cases) {
    let cond = ex(
        ExprKind::StrMatch(StrOp::Eq, b(comm()), b"bash".to_vec()),
        Ty::Bool,
    );
    c.add(
        "str_eq_literal",
        module(
            tracepoint(),
            vec![],
            vec![st(StmtKind::If {
                cond,
                then: vec![emit(vec![("pid", pid())])],
                otherwise: vec![],
            })],
            vec![],
        ),
    );
}

fn string_starts_with_in_scratch(c: &mut Cases) {
    // A 256-byte string does not fit the stack budget for temporaries: scratch it is.
    let cond = ex(
        ExprKind::StrMatch(
            StrOp::StartsWith,
            b(user_str(field(24, IntTy::U64), 256)),
            b"/etc/".to_vec(),
        ),
        Ty::Bool,
    );
    c.add(
        "starts_with_scratch",
        module(
            tracepoint(),
            vec![],
            vec![st(StmtKind::If {
                cond,
                then: vec![emit(vec![("pid", pid())])],
                otherwise: vec![],
            })],
            vec![],
        ),
    );
}

fn string_ends_with_loops_over_the_length(c: &mut Cases) {
    let cond = ex(
        ExprKind::StrMatch(StrOp::EndsWith, b(comm()), b"sh".to_vec()),
        Ty::Bool,
    );
    c.add(
        "ends_with",
        module(
            tracepoint(),
            vec![],
            vec![st(StmtKind::If {
                cond,
                then: vec![emit(vec![("pid", pid())])],
                otherwise: vec![],
            })],
            vec![],
        ),
    );
}

fn if_else_and_return(c: &mut Cases) {
    let cond = ex(
        ExprKind::Cmp(CmpOp::Gt, b(pid()), b(Expr::int(1000, IntTy::U32, S))),
        Ty::Bool,
    );
    c.add(
        "if_else_return",
        module(
            tracepoint(),
            vec![],
            vec![
                st(StmtKind::If {
                    cond,
                    then: vec![st(StmtKind::Return)],
                    otherwise: vec![emit(vec![("low", pid())])],
                }),
                emit(vec![("after", pid())]),
            ],
            vec![],
        ),
    );
}

fn arithmetic_and_bit_operations(c: &mut Cases) {
    let x = field(16, IntTy::I64);
    let e = |op, a, c| ex(ExprKind::Binary(op, b(a), b(c)), Ty::Int(IntTy::I64));
    let sum = e(
        BinOp::BitXor,
        e(
            BinOp::Shl,
            e(BinOp::Mul, e(BinOp::Add, x.clone(), int(3)), int(5)),
            int(2),
        ),
        e(BinOp::BitAnd, x.clone(), int(0xff)),
    );
    c.add(
        "arithmetic",
        module(tracepoint(), vec![], vec![emit(vec![("v", sum)])], vec![]),
    );
}

fn signed_division_and_modulo(c: &mut Cases) {
    let x = field(16, IntTy::I64);
    let y = field(32, IntTy::I64);
    let div = ex(
        ExprKind::Binary(BinOp::Div, b(x.clone()), b(y.clone())),
        Ty::Int(IntTy::I64),
    );
    let rem = ex(
        ExprKind::Binary(BinOp::Mod, b(x), b(y)),
        Ty::Int(IntTy::I64),
    );
    c.add(
        "signed_division",
        module(
            tracepoint(),
            vec![],
            vec![emit(vec![("q", div), ("r", rem)])],
            vec![],
        ),
    );
}

fn locals_of_every_kind(c: &mut Cases) {
    let local = |i| ex(ExprKind::Local(LocalId(i)), Ty::Int(IntTy::U32));
    c.add(
        "locals",
        module(
            tracepoint(),
            vec![Ty::Int(IntTy::U32), Ty::Str { cap: 16 }],
            vec![
                st(StmtKind::Let {
                    local: LocalId(0),
                    value: pid(),
                }),
                st(StmtKind::Let {
                    local: LocalId(1),
                    value: comm(),
                }),
                st(StmtKind::Assign {
                    local: LocalId(0),
                    value: ex(
                        ExprKind::Binary(BinOp::Add, b(local(0)), b(Expr::int(1, IntTy::U32, S))),
                        Ty::Int(IntTy::U32),
                    ),
                }),
                emit(vec![
                    ("pid", local(0)),
                    ("comm", ex(ExprKind::Local(LocalId(1)), Ty::Str { cap: 16 })),
                ]),
            ],
            vec![],
        ),
    );
}

fn sum_min_max_avg(c: &mut Cases) {
    let v = || field(16, IntTy::I64);
    c.add(
        "value_aggregations",
        module(
            tracepoint(),
            vec![],
            vec![
                agg(0, vec![], Some(v())),
                agg(1, vec![], Some(v())),
                agg(2, vec![], Some(v())),
                agg(3, vec![], Some(v())),
            ],
            vec![
                decl("sum", AggKind::Sum, vec![]),
                decl("min", AggKind::Min, vec![]),
                decl("max", AggKind::Max, vec![]),
                decl("avg", AggKind::Avg, vec![]),
            ],
        ),
    );
}

fn log2_histogram(c: &mut Cases) {
    c.add(
        "hist",
        module(
            tracepoint(),
            vec![],
            vec![agg(0, vec![], Some(field(16, IntTy::I64)))],
            vec![decl("hist", AggKind::Hist, vec![])],
        ),
    );
}

fn linear_histogram(c: &mut Cases) {
    c.add(
        "lhist",
        module(
            tracepoint(),
            vec![],
            vec![agg(0, vec![], Some(field(16, IntTy::I64)))],
            vec![decl(
                "lhist",
                AggKind::Lhist {
                    min: 0,
                    max: 100,
                    step: 10,
                },
                vec![],
            )],
        ),
    );
}

fn data_loc_and_inline_strings(c: &mut Cases) {
    c.add(
        "tracepoint_strings",
        module(
            tracepoint(),
            vec![],
            vec![emit(vec![
                (
                    "name",
                    ex(
                        ExprKind::Ctx(CtxRead::DataLocStr { offset: 8 }),
                        Ty::Str { cap: 32 },
                    ),
                ),
                (
                    "comm",
                    ex(
                        ExprKind::Ctx(CtxRead::InlineStr {
                            offset: 12,
                            len: 16,
                        }),
                        Ty::Str { cap: 16 },
                    ),
                ),
            ])],
            vec![],
        ),
    );
}

fn pointer_reads_user_kernel_and_either(c: &mut Cases) {
    let read = |space| {
        ex(
            ExprKind::ReadInt {
                space,
                addr: b(arg(0, IntTy::U64)),
            },
            Ty::Int(IntTy::U32),
        )
    };
    c.add(
        "read_int",
        module(
            Attach::Kprobe {
                function: "f".into(),
            },
            vec![],
            vec![emit(vec![
                ("u", read(AddrSpace::User)),
                ("k", read(AddrSpace::Kernel)),
                ("a", read(AddrSpace::Auto)),
            ])],
            vec![],
        ),
    );
}

fn uprobe_arguments_and_return_value(c: &mut Cases) {
    c.add(
        "uretprobe_args",
        module(
            Attach::Uretprobe {
                binary: "/bin/true".into(),
                symbol: "main".into(),
            },
            vec![],
            vec![emit(vec![
                ("a", arg(0, IntTy::I32)),
                ("f", arg(5, IntTy::U8)),
                (
                    "ret",
                    ex(ExprKind::Ctx(CtxRead::RetVal), Ty::Int(IntTy::I64)),
                ),
            ])],
            vec![],
        ),
    );
}

fn raw_tracepoint_arguments(c: &mut Cases) {
    c.add(
        "raw_tp_args",
        module(
            Attach::RawTracepoint {
                name: "sys_enter".into(),
            },
            vec![],
            vec![emit(vec![("id", arg(1, IntTy::I64))])],
            vec![],
        ),
    );
}

fn boolean_logic_short_circuits(c: &mut Cases) {
    let cmp = |op, v| {
        ex(
            ExprKind::Cmp(op, b(pid()), b(Expr::int(v, IntTy::U32, S))),
            Ty::Bool,
        )
    };
    let cond = ex(
        ExprKind::Or(
            b(ex(
                ExprKind::And(b(cmp(CmpOp::Gt, 10)), b(cmp(CmpOp::Lt, 20))),
                Ty::Bool,
            )),
            b(ex(
                ExprKind::Unary(UnOp::Not, b(cmp(CmpOp::Ne, 1))),
                Ty::Bool,
            )),
        ),
        Ty::Bool,
    );
    c.add(
        "and_or_not",
        module(
            tracepoint(),
            vec![],
            vec![emit(vec![("hit", cond)])],
            vec![],
        ),
    );
}

fn narrow_signed_fields_are_sign_extended(c: &mut Cases) {
    let cast = ex(
        ExprKind::Cast(b(field(16, IntTy::I64))),
        Ty::Int(IntTy::U16),
    );
    c.add(
        "narrow_fields",
        module(
            tracepoint(),
            vec![],
            vec![emit(vec![("small", field(16, IntTy::I8)), ("cast", cast)])],
            vec![],
        ),
    );
}

fn two_probes_share_the_ring_buffer(c: &mut Cases) {
    let mut m = module(
        tracepoint(),
        vec![],
        vec![emit(vec![("pid", pid())])],
        vec![],
    );
    let mut second = m.probes[0].clone();
    second.name = "second".into();
    second.attach = Attach::RawTracepoint {
        name: "sys_exit".into(),
    };
    m.probes.push(second);
    c.add("two_probes", m);
}
