//! Codegen: typed probe IR → eBPF instructions, map definitions and layouts.
//!
//! Verifier-safe by construction: every map lookup is followed by a NULL check, every ring
//! buffer reservation is submitted on the one path that fills it and never escapes the
//! statement, string work is bounded by buffer capacities known here, keys are zeroed
//! before they are filled, and buffers above [`STACK_STR_MAX`] live in a per-CPU scratch
//! map instead of the 512-byte stack.
//!
//! Register convention: `r6` holds the context, `r7` the scratch buffer, `r8` the ring
//! buffer record of the `emit` being filled; `r1`–`r5` are expression temporaries, spilled
//! to the stack around helper calls.

mod expr;
mod regs;
mod stmt;

use std::collections::BTreeMap;

use crate::asm::{Asm, AsmError, Assembled};
use crate::disasm::disassemble;
use crate::elf::{self, ObjectProgram};
use crate::helpers::Helper;
use crate::insn::{Insn, JmpOp, Reg};
use crate::ir::{AggKind, Module, Probe, Stmt, StmtKind, Ty};
use crate::layout::{AggLayout, AggValue, EventLayout, RecordLayout};
use crate::maps::{MapDef, MapId, MapKind};
use crate::program::{Attach, Context};
use crate::span::Span;

use regs::{Frame, Regs};

/// The ring buffer every `emit` of a module writes to.
pub const EVENTS_MAP: &str = "events";
/// Per-CPU array of `u64` counters: failed ring-buffer reservations, one slot per probe.
pub const DROPS_MAP: &str = "drops";
/// Per-CPU array with one large value: buffers too big for the stack.
pub const SCRATCH_MAP: &str = "scratch";

/// Strings up to this many bytes get stack buffers; larger ones use the scratch map.
pub const STACK_STR_MAX: u32 = 32;
/// Aggregation keys up to this many bytes are built on the stack.
pub const STACK_KEY_MAX: u32 = 64;
/// The kernel's stack limit per program.
pub const STACK_LIMIT: u32 = 512;
/// The scratch map's value size limit (per-CPU allocations fail above 32 KiB).
pub const SCRATCH_LIMIT: u32 = 32 * 1024;

/// The map name of aggregation `index`.
pub fn agg_map_name(index: usize) -> String {
    format!("agg{index}")
}

/// The program (and symbol) name of probe `index`: `p<index>_<name>`, cut to the 15
/// characters the kernel keeps, with only `[A-Za-z0-9_]`.
pub fn program_name(index: usize, probe_name: &str) -> String {
    let mut name = format!("p{index}_");
    name.extend(
        probe_name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    name.truncate(15);
    name
}

/// What codegen could not do, with the span of the IR node responsible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct CodegenError {
    pub kind: CodegenErrorKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodegenErrorKind {
    /// The probe needs more than the kernel's 512 bytes of stack.
    #[error("the probe needs {needed} bytes of stack; the kernel allows {STACK_LIMIT}")]
    StackOverflow { needed: u32 },
    /// Buffers exceed the scratch map's size limit.
    #[error("the probe needs {needed} bytes of buffers; at most {SCRATCH_LIMIT} are possible")]
    ScratchOverflow { needed: u32 },
    /// An expression nests too deeply for the five temporary registers.
    #[error("expression too complex: split it with `let`")]
    TooComplex,
    /// The construct has no meaning for this program kind.
    #[error("{0}")]
    Unsupported(String),
    /// The IR broke an invariant the front end guarantees: a compiler bug.
    #[error("internal compiler error (a bug in nubpf): {0}")]
    Internal(String),
    /// Assembly failed (e.g. a jump that does not fit).
    #[error("{0}")]
    Asm(#[from] AsmError),
}

impl CodegenError {
    pub fn new(kind: CodegenErrorKind, span: Span) -> CodegenError {
        CodegenError { kind, span }
    }
}

pub(crate) type Result<T> = std::result::Result<T, CodegenError>;

/// One compiled program of a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledProgram {
    /// Index of the probe in `Module::probes`.
    pub probe: usize,
    /// Program and symbol name (what aya looks the program up by).
    pub name: String,
    pub section: String,
    pub attach: Attach,
    pub code: Assembled,
    /// Peak stack use in bytes.
    pub stack_bytes: u32,
}

impl CompiledProgram {
    /// The source span of instruction `insn` (as numbered in the verifier log).
    pub fn span_at(&self, insn: usize) -> Option<crate::Span> {
        self.code.spans.get(insn).copied()
    }

    /// Verifier-style disassembly, maps named.
    pub fn disassemble(&self, maps: &[MapDef]) -> String {
        let refs: BTreeMap<usize, MapId> = self.code.map_refs.iter().copied().collect();
        disassemble(&self.code.insns, &|i| {
            refs.get(&i)
                .and_then(|m| maps.get(m.0 as usize))
                .map(|m| m.name.clone())
        })
    }
}

/// The result of compiling a module: the object bytes aya loads and everything user space
/// needs to read what the programs produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    pub object: Vec<u8>,
    pub programs: Vec<CompiledProgram>,
    pub maps: Vec<MapDef>,
    /// Indexed by event id (the first `u32` of each ring-buffer record).
    pub events: Vec<EventLayout>,
    /// Indexed by `AggId`.
    pub aggregations: Vec<AggLayout>,
}

impl Compiled {
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    pub fn map(&self, name: &str) -> Option<&MapDef> {
        self.maps.iter().find(|m| m.name == name)
    }
}

/// Compiles a whole module into one object.
pub fn compile(module: &Module) -> Result<Compiled> {
    let mut m = ModuleGen::new(module);
    let mut programs = Vec::with_capacity(module.probes.len());
    for (index, probe) in module.probes.iter().enumerate() {
        programs.push(m.compile_probe(index, probe)?);
    }
    let ModuleGen {
        mut maps,
        events,
        aggregations,
        scratch,
        scratch_bytes,
        ..
    } = m;
    if let Some(id) = scratch {
        maps[id.0 as usize].value_size = scratch_bytes.max(8);
    }
    let object = elf::write(
        &programs
            .iter()
            .map(|p| ObjectProgram {
                name: &p.name,
                section: &p.section,
                insns: &p.code.insns,
                map_refs: &p.code.map_refs,
            })
            .collect::<Vec<_>>(),
        &maps,
    );
    Ok(Compiled {
        object,
        programs,
        maps,
        events,
        aggregations,
    })
}

/// Module-wide state: maps, layouts, scratch size.
struct ModuleGen<'m> {
    module: &'m Module,
    maps: Vec<MapDef>,
    events_map: Option<MapId>,
    drops_map: Option<MapId>,
    scratch: Option<MapId>,
    scratch_bytes: u32,
    agg_maps: Vec<MapId>,
    events: Vec<EventLayout>,
    aggregations: Vec<AggLayout>,
}

impl<'m> ModuleGen<'m> {
    fn new(module: &'m Module) -> ModuleGen<'m> {
        let mut m = ModuleGen {
            module,
            maps: Vec::new(),
            events_map: None,
            drops_map: None,
            scratch: None,
            scratch_bytes: 0,
            agg_maps: Vec::new(),
            events: Vec::new(),
            aggregations: Vec::new(),
        };
        if module.probes.iter().any(|p| emits(&p.body)) {
            m.events_map = Some(m.add_map(MapDef {
                name: EVENTS_MAP.into(),
                kind: MapKind::RingBuf,
                key_size: 0,
                value_size: 0,
                max_entries: module.options.ringbuf_bytes,
                flags: 0,
            }));
            m.drops_map = Some(m.add_map(MapDef {
                name: DROPS_MAP.into(),
                kind: MapKind::PerCpuArray,
                key_size: 4,
                value_size: 8,
                max_entries: module.probes.len() as u32,
                flags: 0,
            }));
        }
        for (index, agg) in module.aggregations.iter().enumerate() {
            let mut fields: Vec<(&str, Ty)> =
                agg.key.iter().map(|(n, t)| (n.as_str(), *t)).collect();
            let histogram = matches!(agg.kind, AggKind::Hist | AggKind::Lhist { .. });
            if histogram {
                fields.push(("bucket", Ty::Int(crate::ir::IntTy::U64)));
            }
            let mut key = RecordLayout::key(fields);
            let bucket_offset = if histogram {
                key.fields.pop().map(|f| f.offset)
            } else {
                None
            };
            let value = AggValue::of(agg.kind);
            let map_name = agg_map_name(index);
            let id = m.add_map(MapDef {
                name: map_name.clone(),
                kind: MapKind::PerCpuHash,
                key_size: key.size,
                value_size: value.size(),
                max_entries: module.options.max_keys,
                flags: crate::maps::BPF_F_NO_PREALLOC,
            });
            m.agg_maps.push(id);
            m.aggregations.push(AggLayout {
                agg: crate::ir::AggId(index as u32),
                name: agg.name.clone(),
                probe: agg.probe,
                kind: agg.kind,
                map_name,
                key,
                bucket_offset,
                value,
                signed: agg.signed,
            });
        }
        m
    }

    fn add_map(&mut self, def: MapDef) -> MapId {
        self.maps.push(def);
        MapId(self.maps.len() as u32 - 1)
    }

    fn scratch_map(&mut self) -> MapId {
        if let Some(id) = self.scratch {
            return id;
        }
        let id = self.add_map(MapDef {
            name: SCRATCH_MAP.into(),
            kind: MapKind::PerCpuArray,
            key_size: 4,
            value_size: 8,
            max_entries: 1,
            flags: 0,
        });
        self.scratch = Some(id);
        id
    }

    fn compile_probe(&mut self, index: usize, probe: &Probe) -> Result<CompiledProgram> {
        // The first pass learns whether the probe needs the scratch buffer; only then can
        // the prologue that looks it up be written, so a probe that does is generated twice.
        let events_before = self.events.len();
        let first = Gen::new(self, index, probe, false).run();
        let (code, stack_bytes, scratch_bytes) = match first {
            Ok(done) => done,
            Err(GenStop::NeedsScratch) => {
                self.events.truncate(events_before);
                self.scratch_map();
                match Gen::new(self, index, probe, true).run() {
                    Ok(done) => done,
                    Err(GenStop::NeedsScratch) => {
                        return Err(CodegenError::new(
                            CodegenErrorKind::Internal("scratch requested twice".into()),
                            probe.span,
                        ));
                    }
                    Err(GenStop::Error(e)) => return Err(e),
                }
            }
            Err(GenStop::Error(e)) => return Err(e),
        };
        self.scratch_bytes = self.scratch_bytes.max(scratch_bytes);
        Ok(CompiledProgram {
            probe: index,
            name: program_name(index, &probe.name),
            section: probe.attach.section_name(),
            attach: probe.attach.clone(),
            code,
            stack_bytes,
        })
    }
}

fn emits(body: &[Stmt]) -> bool {
    body.iter().any(|s| match &s.kind {
        StmtKind::Emit { .. } => true,
        StmtKind::If {
            then, otherwise, ..
        } => emits(then) || emits(otherwise),
        _ => false,
    })
}

/// Why a codegen pass stopped early.
enum GenStop {
    /// The probe needs the scratch buffer and this pass was run without it.
    NeedsScratch,
    Error(CodegenError),
}

impl From<CodegenError> for GenStop {
    fn from(e: CodegenError) -> GenStop {
        GenStop::Error(e)
    }
}

/// Where a buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    /// Relative to the frame pointer (negative offsets).
    Stack,
    /// In the scratch map value (`r7`).
    Scratch,
    /// In the ring-buffer record being filled (`r8`).
    Record,
}

/// A buffer: a string value, a key or a record field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Buf {
    base: Base,
    off: i32,
    cap: u32,
}

impl Buf {
    fn base_reg(&self) -> Reg {
        match self.base {
            Base::Stack => Reg::FP,
            Base::Scratch => SCRATCH_REG,
            Base::Record => RECORD_REG,
        }
    }

    fn at(&self, delta: u32, cap: u32) -> Buf {
        Buf {
            base: self.base,
            off: self.off + delta as i32,
            cap,
        }
    }
}

const CTX_REG: Reg = Reg::R6;
const SCRATCH_REG: Reg = Reg::R7;
const RECORD_REG: Reg = Reg::R8;

/// Where a local lives.
#[derive(Clone, Copy, Debug)]
enum LocalSlot {
    /// An integer or bool in an 8-byte stack slot.
    Word(i16),
    Str(Buf),
}

/// A helper-call argument.
#[derive(Clone, Copy, Debug)]
enum Arg {
    /// A temporary holding the value; consumed by the call.
    Temp(Reg),
    Imm(i64),
    Map(MapId),
    /// The address of a buffer.
    Addr(Buf),
    /// A fixed register (context, record) passed as is.
    Fixed(Reg),
    /// An 8-byte stack slot's content.
    StackWord(i16),
}

/// Per-probe codegen state.
struct Gen<'g, 'm> {
    m: &'g mut ModuleGen<'m>,
    probe_index: usize,
    probe: &'g Probe,
    context: Context,
    asm: Asm,
    frame: Frame,
    regs: Regs,
    locals: Vec<Option<LocalSlot>>,
    /// `Some(used bytes)` when this pass has the scratch buffer in `r7`.
    scratch: Option<u32>,
    scratch_peak: u32,
    exit: crate::asm::Label,
}

impl<'g, 'm> Gen<'g, 'm> {
    fn new(
        m: &'g mut ModuleGen<'m>,
        probe_index: usize,
        probe: &'g Probe,
        with_scratch: bool,
    ) -> Gen<'g, 'm> {
        let mut asm = Asm::new();
        let exit = asm.new_label();
        Gen {
            m,
            probe_index,
            probe,
            context: probe.attach.kind().context(),
            asm,
            frame: Frame::default(),
            regs: Regs::default(),
            locals: vec![None; probe.locals.len()],
            scratch: with_scratch.then_some(0),
            scratch_peak: 0,
            exit,
        }
    }

    fn err(&self, kind: CodegenErrorKind) -> CodegenError {
        CodegenError::new(kind, self.asm.span())
    }

    fn internal(&self, what: impl Into<String>) -> CodegenError {
        self.err(CodegenErrorKind::Internal(what.into()))
    }

    fn run(mut self) -> std::result::Result<(Assembled, u32, u32), GenStop> {
        self.asm.set_span(self.probe.span);
        // The context arrives in r1, which the first helper call clobbers: keep it in a
        // callee-saved register when something reads it.
        if self.probe.reads_ctx() {
            self.asm.emit(Insn::mov64_reg(CTX_REG, Reg::R1));
        }
        if self.scratch.is_some() {
            let scratch = self.m.scratch_map();
            let key = self.frame.alloc(8, self.asm.span())?;
            self.asm
                .emit(Insn::st_imm(crate::insn::Size::W, Reg::FP, key, 0));
            self.call(
                Helper::MapLookupElem,
                &[
                    Arg::Map(scratch),
                    Arg::Addr(Buf {
                        base: Base::Stack,
                        off: key as i32,
                        cap: 4,
                    }),
                ],
            )?;
            self.asm.jump_imm(JmpOp::Eq, Reg::R0, 0, self.exit);
            self.asm.emit(Insn::mov64_reg(SCRATCH_REG, Reg::R0));
        }
        let mark = self.frame.mark();
        let probe = self.probe;
        self.block(&probe.body)?;
        self.frame.reset(mark);
        self.asm.set_span(self.probe.span);
        self.asm.bind(self.exit).map_err(|e| self.err(e.into()))?;
        self.asm.emit(Insn::mov64_imm(Reg::R0, 0));
        self.asm.emit(Insn::exit());
        let stack = self.frame.peak();
        let scratch = self.scratch_peak;
        let code = self
            .asm
            .finish()
            .map_err(|e| GenStop::Error(CodegenError::new(e.into(), self.probe.span)))?;
        Ok((code, stack, scratch))
    }

    /// Allocates a buffer of `cap` bytes for a temporary or a local: on the stack when small,
    /// else in scratch (stopping this pass if it has none).
    fn alloc_buf(&mut self, cap: u32, stack_max: u32) -> std::result::Result<Buf, GenStop> {
        let size = cap.next_multiple_of(8);
        if size <= stack_max {
            let off = self.frame.alloc(size, self.asm.span())?;
            return Ok(Buf {
                base: Base::Stack,
                off: off as i32,
                cap,
            });
        }
        let Some(used) = self.scratch else {
            return Err(GenStop::NeedsScratch);
        };
        let end = used + size;
        if end > SCRATCH_LIMIT {
            return Err(self
                .err(CodegenErrorKind::ScratchOverflow { needed: end })
                .into());
        }
        self.scratch = Some(end);
        self.scratch_peak = self.scratch_peak.max(end);
        Ok(Buf {
            base: Base::Scratch,
            off: used as i32,
            cap,
        })
    }

    fn scratch_mark(&self) -> Option<u32> {
        self.scratch
    }

    fn scratch_reset(&mut self, mark: Option<u32>) {
        self.scratch = mark;
    }

    /// Loads the address of `buf` into `dst`.
    fn addr_of(&mut self, dst: Reg, buf: Buf) {
        self.asm.emit(Insn::mov64_reg(dst, buf.base_reg()));
        if buf.off != 0 {
            self.asm
                .emit(Insn::alu64_imm(crate::insn::AluOp::Add, dst, buf.off));
        }
    }

    /// Calls `helper` with `args` in `r1`..; the result is left in `r0`. Temporaries given
    /// as arguments are consumed; every other live temporary survives the call (spilled to
    /// the stack and reloaded).
    fn call(&mut self, helper: Helper, args: &[Arg]) -> Result<()> {
        for arg in args {
            if let Arg::Temp(r) = arg {
                self.regs.free(*r);
            }
        }
        let spilled = self.spill_live()?;
        // Move temporaries into their argument registers without clobbering a source that
        // is still needed (a parallel move; `r0` breaks cycles).
        let mut moves: Vec<(Reg, Reg)> = args
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Arg::Temp(r) if r.0 != i as u8 + 1 => Some((*r, Reg(i as u8 + 1))),
                _ => None,
            })
            .collect();
        while !moves.is_empty() {
            let ready = moves
                .iter()
                .position(|(_, dst)| !moves.iter().any(|(src, _)| src == dst));
            match ready {
                Some(i) => {
                    let (src, dst) = moves.remove(i);
                    self.asm.emit(Insn::mov64_reg(dst, src));
                }
                None => {
                    let (src, _) = moves[0];
                    self.asm.emit(Insn::mov64_reg(Reg::R0, src));
                    for m in moves.iter_mut() {
                        if m.0 == src {
                            m.0 = Reg::R0;
                        }
                    }
                }
            }
        }
        for (i, arg) in args.iter().enumerate() {
            let dst = Reg(i as u8 + 1);
            match *arg {
                Arg::Temp(_) => {}
                Arg::Imm(v) => self.load_imm(dst, v),
                Arg::Map(map) => self.asm.ld_map(dst, map),
                Arg::Addr(buf) => self.addr_of(dst, buf),
                Arg::Fixed(r) => self.asm.emit(Insn::mov64_reg(dst, r)),
                Arg::StackWord(off) => {
                    self.asm
                        .emit(Insn::ldx(crate::insn::Size::DW, dst, Reg::FP, off))
                }
            }
        }
        self.asm.call(helper);
        self.restore(spilled);
        Ok(())
    }

    fn spill_live(&mut self) -> Result<Vec<(Reg, i16)>> {
        let live = self.regs.live();
        let mut spilled = Vec::with_capacity(live.len());
        for r in live {
            let slot = self.frame.alloc(8, self.asm.span())?;
            self.asm
                .emit(Insn::stx(crate::insn::Size::DW, Reg::FP, slot, r));
            spilled.push((r, slot));
        }
        Ok(spilled)
    }

    fn restore(&mut self, spilled: Vec<(Reg, i16)>) {
        for (r, slot) in spilled {
            self.asm
                .emit(Insn::ldx(crate::insn::Size::DW, r, Reg::FP, slot));
        }
    }

    fn load_imm(&mut self, dst: Reg, v: i64) {
        match i32::try_from(v) {
            Ok(v) => self.asm.emit(Insn::mov64_imm(dst, v)),
            Err(_) => self.asm.emit_wide(Insn::ld_imm64(dst, v as u64)),
        }
    }
}
