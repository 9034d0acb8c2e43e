//! Codegen of statements: locals, branches, `emit` into the ring buffer and aggregation
//! updates in per-CPU maps.

use super::expr::{G, chunks};
use super::{
    Arg, Base, Buf, CodegenErrorKind, Gen, LocalSlot, RECORD_REG, STACK_KEY_MAX, STACK_STR_MAX,
};
use crate::helpers::{BPF_ANY, BPF_RB_NO_WAKEUP, Helper};
use crate::insn::{AluOp, Insn, JmpOp, Reg, Size};
use crate::ir::{AggKind, Builtin, Expr, ExprKind, LocalId, Stmt, StmtKind, Ty, Wakeup};
use crate::layout::{EVENT_HEADER, EventLayout, RecordLayout, lhist_buckets};

impl Gen<'_, '_> {
    pub(super) fn block(&mut self, stmts: &[Stmt]) -> G<()> {
        for s in stmts {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> G<()> {
        let outer = self.asm.set_span(s.span);
        let result = self.stmt_inner(s);
        self.asm.set_span(outer);
        if result.is_ok() && !self.regs.is_empty() {
            return Err(self.internal("temporaries live across statements").into());
        }
        result
    }

    fn stmt_inner(&mut self, s: &Stmt) -> G<()> {
        match &s.kind {
            StmtKind::Let { local, value } => {
                self.declare(*local)?;
                self.assign(*local, value)
            }
            StmtKind::Assign { local, value } => self.assign(*local, value),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let else_label = self.asm.new_label();
                self.with_temps(|g| g.cond(cond, else_label, false))?;
                self.block(then)?;
                if otherwise.is_empty() {
                    self.bind(else_label)
                } else {
                    let end = self.asm.new_label();
                    self.asm.goto(end);
                    self.bind(else_label)?;
                    self.block(otherwise)?;
                    self.bind(end)
                }
            }
            StmtKind::Return => {
                self.asm.goto(self.exit);
                Ok(())
            }
            StmtKind::Emit { fields } => self.with_temps(|g| g.emit(fields)),
            StmtKind::Aggregate { agg, key, value } => {
                self.with_temps(|g| g.aggregate(agg.0 as usize, key, value.as_ref()))
            }
        }
    }

    /// Runs `f` and then frees the stack and scratch it took for temporaries.
    fn with_temps(&mut self, f: impl FnOnce(&mut Self) -> G<()>) -> G<()> {
        let frame = self.frame.mark();
        let scratch = self.scratch_mark();
        f(self)?;
        self.frame.reset(frame);
        self.scratch_reset(scratch);
        Ok(())
    }

    /// Gives a local its home; a local's storage lives until the probe ends.
    fn declare(&mut self, local: LocalId) -> G<()> {
        let Some(ty) = self.probe.locals.get(local.0 as usize).copied() else {
            return Err(self.internal("undeclared local").into());
        };
        let slot = match ty {
            Ty::Str { cap } => LocalSlot::Str(self.alloc_buf(cap as u32, STACK_STR_MAX)?),
            Ty::Int(_) | Ty::Bool => LocalSlot::Word(self.frame.alloc(8, self.asm.span())?),
        };
        self.locals[local.0 as usize] = Some(slot);
        Ok(())
    }

    fn assign(&mut self, local: LocalId, value: &Expr) -> G<()> {
        match self.locals.get(local.0 as usize).copied().flatten() {
            Some(LocalSlot::Word(off)) => self.with_temps(|g| {
                let r = g.expr(value)?;
                g.asm.emit(Insn::stx(Size::DW, Reg::FP, off, r));
                g.regs.free(r);
                Ok(())
            }),
            Some(LocalSlot::Str(buf)) => self.with_temps(|g| g.str_into(value, buf)),
            None => Err(self.internal("assignment to an undeclared local").into()),
        }
    }

    /// Writes a value of type `ty` into `dst` (an integer field or a string buffer).
    fn store_value(&mut self, e: &Expr, ty: Ty, dst: Buf) -> G<()> {
        match ty {
            Ty::Str { .. } => self.str_into(e, dst),
            Ty::Int(_) | Ty::Bool => {
                let size = Size::from_bytes(ty.size())
                    .ok_or_else(|| self.internal("field width not 1, 2, 4 or 8"))?;
                if let ExprKind::Builtin(b) = e.kind
                    && b != Builtin::Comm
                {
                    // Stored from `r0`, where the helper left it.
                    let outer = self.asm.set_span(e.span);
                    self.builtin_in_r0(b)?;
                    self.asm
                        .emit(Insn::stx(size, dst.base_reg(), dst.off as i16, Reg::R0));
                    self.asm.set_span(outer);
                    return Ok(());
                }
                let r = self.expr(e)?;
                self.asm
                    .emit(Insn::stx(size, dst.base_reg(), dst.off as i16, r));
                self.regs.free(r);
                Ok(())
            }
        }
    }

    /// Reserve a record, fill every field in place, submit. A failed reservation counts a
    /// drop for this probe instead.
    fn emit(&mut self, fields: &[(String, Expr)]) -> G<()> {
        let (Some(events), Some(drops)) = (self.m.events_map, self.m.drops_map) else {
            return Err(self.internal("emit without a ring buffer").into());
        };
        let record = RecordLayout::new(
            EVENT_HEADER,
            fields.iter().map(|(name, e)| (name.as_str(), e.ty)),
        );
        let id = self.m.events.len() as u32;
        let size = record.size;
        self.m.events.push(EventLayout {
            id,
            probe: self.probe_index,
            record: record.clone(),
        });
        self.call(
            Helper::RingbufReserve,
            &[Arg::Map(events), Arg::Imm(size as i64), Arg::Imm(0)],
        )?;
        let dropped = self.asm.new_label();
        let done = self.asm.new_label();
        self.asm.jump_imm(JmpOp::Eq, Reg::R0, 0, dropped);
        self.asm.emit(Insn::mov64_reg(RECORD_REG, Reg::R0));
        self.asm
            .emit(Insn::st_imm(Size::DW, RECORD_REG, 0, id as i32));
        for ((_, e), field) in fields.iter().zip(&record.fields) {
            let dst = Buf {
                base: Base::Record,
                off: field.offset as i32,
                cap: field.ty.size(),
            };
            self.store_value(e, field.ty, dst)?;
        }
        let flags = match self.m.module.options.wakeup {
            Wakeup::Poll => BPF_RB_NO_WAKEUP,
            Wakeup::Adaptive => 0,
        };
        self.call(
            Helper::RingbufSubmit,
            &[Arg::Fixed(RECORD_REG), Arg::Imm(flags as i64)],
        )?;
        self.asm.goto(done);
        self.bind(dropped)?;
        // drops[probe] += 1 on this CPU.
        let key = self.frame.alloc(8, self.asm.span())?;
        self.asm
            .emit(Insn::st_imm(Size::W, Reg::FP, key, self.probe_index as i32));
        self.call(
            Helper::MapLookupElem,
            &[Arg::Map(drops), Arg::Addr(stack_buf(key, 4))],
        )?;
        self.asm.jump_imm(JmpOp::Eq, Reg::R0, 0, done);
        self.increment(Reg::R0, 0, None)?;
        self.bind(done)
    }

    /// `*(u64 *)(ptr + off) += by` (1 when `by` is `None`). The maps are per-CPU, so no other
    /// CPU races this; `lock add` is used because it is one instruction shorter than
    /// load/add/store and measured no slower (kernel run time of count-per-pid, 123 vs 130 ns).
    fn increment(&mut self, ptr: Reg, off: i16, by: Option<Reg>) -> G<()> {
        match by {
            Some(r) => self.asm.emit(Insn::atomic_add(Size::DW, ptr, off, r)),
            None => {
                let t = self.regs.alloc(self.asm.span())?;
                self.asm.emit(Insn::mov64_imm(t, 1));
                self.asm.emit(Insn::atomic_add(Size::DW, ptr, off, t));
                self.regs.free(t);
            }
        }
        Ok(())
    }

    fn aggregate(&mut self, index: usize, key: &[Expr], value: Option<&Expr>) -> G<()> {
        let Some(layout) = self.m.aggregations.get(index).cloned() else {
            return Err(self.internal("unknown aggregation").into());
        };
        let map = self.m.agg_maps[index];
        if key.len() != layout.key.fields.len() {
            return Err(self.internal("aggregation key arity mismatch").into());
        }
        let v = match (value, layout.kind.takes_value()) {
            (Some(e), true) => Some(self.expr(e)?),
            (None, false) => None,
            _ => return Err(self.internal("aggregation value mismatch").into()),
        };
        let kb = self.alloc_buf(layout.key.size, STACK_KEY_MAX)?;
        // Map keys compare as bytes, so padding and string tails must be zeroed. Integer
        // fields and the bucket (8 bytes after the fields) are written whole, and so is
        // `comm`, which its helper pads with NULs; other strings stop at their NUL.
        let bucket_bytes = if layout.bucket_offset.is_some() { 8 } else { 0 };
        let written_whole = key.iter().zip(&layout.key.fields).all(|(e, f)| {
            !f.ty.is_str()
                || (matches!(e.kind, ExprKind::Builtin(Builtin::Comm)) && f.ty.size() <= 16)
        });
        if layout.key.has_padding(bucket_bytes) || !written_whole {
            let mut at = 0;
            for (size, n) in chunks(layout.key.size as usize) {
                self.asm
                    .emit(Insn::st_imm(size, kb.base_reg(), (kb.off + at) as i16, 0));
                at += n as i32;
            }
        }
        for (e, field) in key.iter().zip(&layout.key.fields) {
            self.store_value(e, field.ty, kb.at(field.offset, field.ty.size()))?;
        }
        if let Some(bucket_off) = layout.bucket_offset {
            let Some(v) = v else {
                return Err(self.internal("histogram without a value").into());
            };
            let b = self.bucket(layout.kind, v)?;
            self.asm.emit(Insn::stx(
                Size::DW,
                kb.base_reg(),
                (kb.off + bucket_off as i32) as i16,
                b,
            ));
            self.regs.free(b);
        }
        // Histograms only count: the value is done with once it picked the bucket, and
        // freeing it keeps it from being saved around the helper calls below.
        let v = match v {
            Some(r) if matches!(layout.kind, AggKind::Hist | AggKind::Lhist { .. }) => {
                self.regs.free(r);
                None
            }
            v => v,
        };
        self.call(Helper::MapLookupElem, &[Arg::Map(map), Arg::Addr(kb)])?;
        let miss = self.asm.new_label();
        let done = self.asm.new_label();
        self.asm.jump_imm(JmpOp::Eq, Reg::R0, 0, miss);
        // Hit: update this CPU's value in place.
        match layout.kind {
            AggKind::Count | AggKind::Hist | AggKind::Lhist { .. } => {
                self.increment(Reg::R0, 0, None)?
            }
            AggKind::Sum => self.increment(Reg::R0, 0, v)?,
            AggKind::Avg => {
                self.increment(Reg::R0, 0, None)?;
                self.increment(Reg::R0, 8, v)?;
            }
            AggKind::Min | AggKind::Max => {
                let Some(v) = v else {
                    return Err(self.internal("min/max without a value").into());
                };
                // Another CPU may have created the key: this CPU's slot then has no sample.
                let set = self.asm.new_label();
                let counted = self.asm.new_label();
                let t = self.regs.alloc(self.asm.span())?;
                self.asm.emit(Insn::ldx(Size::DW, t, Reg::R0, 0));
                self.asm.jump_imm(JmpOp::Eq, t, 0, set);
                self.asm.emit(Insn::ldx(Size::DW, t, Reg::R0, 8));
                let keep = match (layout.kind == AggKind::Min, layout.signed) {
                    (true, true) => JmpOp::Sge,
                    (true, false) => JmpOp::Ge,
                    (false, true) => JmpOp::Sle,
                    (false, false) => JmpOp::Le,
                };
                self.asm.jump_reg(keep, v, t, counted);
                self.bind(set)?;
                self.asm.emit(Insn::stx(Size::DW, Reg::R0, 8, v));
                self.bind(counted)?;
                self.regs.free(t);
                self.increment(Reg::R0, 0, None)?;
            }
        }
        self.asm.goto(done);
        // Miss: create the key with this sample.
        self.bind(miss)?;
        let init = self.frame.alloc(16, self.asm.span())?;
        let (count_off, value_off) = match layout.kind {
            AggKind::Count | AggKind::Hist | AggKind::Lhist { .. } => (Some(0), None),
            AggKind::Sum => (None, Some(0)),
            AggKind::Min | AggKind::Max | AggKind::Avg => (Some(0), Some(8)),
        };
        if let Some(off) = count_off {
            self.asm
                .emit(Insn::st_imm(Size::DW, Reg::FP, init + off, 1));
        }
        if let (Some(off), Some(v)) = (value_off, v) {
            self.asm.emit(Insn::stx(Size::DW, Reg::FP, init + off, v));
        }
        self.call(
            Helper::MapUpdateElem,
            &[
                Arg::Map(map),
                Arg::Addr(kb),
                Arg::Addr(stack_buf(init, 16)),
                Arg::Imm(BPF_ANY as i64),
            ],
        )?;
        self.bind(done)?;
        if let Some(v) = v {
            self.regs.free(v);
        }
        Ok(())
    }

    /// The histogram bucket of the value in `v` (left intact), in a fresh temporary.
    fn bucket(&mut self, kind: AggKind, v: Reg) -> G<Reg> {
        let b = self.regs.alloc(self.asm.span())?;
        let done = self.asm.new_label();
        match kind {
            AggKind::Hist => {
                // 0 for negatives, 1 for zero, else 2 + floor(log2(v)) by binary search:
                // at each step, when x >= 2^k, x >>= k and the bucket grows by k.
                self.asm.emit(Insn::mov64_imm(b, 0));
                self.asm.jump_imm(JmpOp::Slt, v, 0, done);
                self.asm.emit(Insn::mov64_imm(b, 1));
                self.asm.jump_imm(JmpOp::Eq, v, 0, done);
                let x = self.regs.alloc(self.asm.span())?;
                self.asm.emit(Insn::mov64_reg(x, v));
                self.asm.emit(Insn::mov64_imm(b, 2));
                // 2^32 does not fit an immediate: compare with u32::MAX in a register (a
                // 32-bit move of -1 zero-extends).
                let t = self.regs.alloc(self.asm.span())?;
                self.asm.emit(Insn::alu32_imm(AluOp::Mov, t, -1));
                let next = self.asm.new_label();
                self.asm.jump_reg(JmpOp::Le, x, t, next);
                self.asm.emit(Insn::alu64_imm(AluOp::Rsh, x, 32));
                self.asm.emit(Insn::alu64_imm(AluOp::Add, b, 32));
                self.bind(next)?;
                self.regs.free(t);
                for shift in [16, 8, 4, 2] {
                    let next = self.asm.new_label();
                    self.asm.jump_imm(JmpOp::Lt, x, 1 << shift, next);
                    self.asm.emit(Insn::alu64_imm(AluOp::Rsh, x, shift));
                    self.asm.emit(Insn::alu64_imm(AluOp::Add, b, shift));
                    self.bind(next)?;
                }
                // The last step needs no shift: nothing reads x after it.
                let next = self.asm.new_label();
                self.asm.jump_imm(JmpOp::Lt, x, 2, next);
                self.asm.emit(Insn::alu64_imm(AluOp::Add, b, 1));
                self.bind(next)?;
                self.regs.free(x);
            }
            AggKind::Lhist { min, max, step } => {
                if step <= 0 || max <= min {
                    return Err(self
                        .err(CodegenErrorKind::Unsupported(
                            "lhist needs min < max and a positive step".into(),
                        ))
                        .into());
                }
                let over = lhist_buckets(min, max, step) as i64 + 1;
                let inside = self.asm.new_label();
                let t = self.regs.alloc(self.asm.span())?;
                self.asm.emit(Insn::mov64_imm(b, 0));
                self.load_imm(t, min);
                self.asm.jump_reg(JmpOp::Slt, v, t, done);
                self.load_imm(b, over);
                self.load_imm(t, max);
                self.asm.jump_reg(JmpOp::Sge, v, t, done);
                self.bind(inside)?;
                self.asm.emit(Insn::mov64_reg(b, v));
                self.load_imm(t, min);
                self.asm.emit(Insn::alu64_reg(AluOp::Sub, b, t));
                self.load_imm(t, step);
                self.asm.emit(Insn::alu64_reg(AluOp::Div, b, t));
                self.asm.emit(Insn::alu64_imm(AluOp::Add, b, 1));
                self.regs.free(t);
            }
            _ => return Err(self.internal("bucket of a non-histogram").into()),
        }
        self.bind(done)?;
        Ok(b)
    }
}

fn stack_buf(off: i16, cap: u32) -> Buf {
    Buf {
        base: Base::Stack,
        off: off as i32,
        cap,
    }
}
