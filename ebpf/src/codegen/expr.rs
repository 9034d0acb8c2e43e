//! Codegen of expressions: integers and bools into temporaries, conditions into branches,
//! strings into buffers.

use super::{Arg, Base, Buf, CTX_REG, CodegenErrorKind, Gen, GenStop, LocalSlot, STACK_STR_MAX};
use crate::asm::Label;
use crate::helpers::Helper;
use crate::insn::{AluOp, Insn, JmpOp, Reg, Size};
use crate::ir::{
    AddrSpace, BinOp, Builtin, CmpOp, CtxRead, Expr, ExprKind, IntTy, StrOp, Ty, UnOp,
};
use crate::program::{Context, PT_REGS_ARGS, PT_REGS_IP, PT_REGS_RC};

pub(super) type G<T> = std::result::Result<T, GenStop>;

/// The integer type a value of type `ty` has in a register (bools are `u8` 0 or 1).
fn int_ty(ty: Ty) -> IntTy {
    match ty {
        Ty::Int(i) => i,
        Ty::Bool | Ty::Str { .. } => IntTy::U8,
    }
}

fn is_signed(ty: Ty) -> bool {
    matches!(ty, Ty::Int(IntTy { signed: true, .. }))
}

impl Gen<'_, '_> {
    /// Evaluates an integer or bool expression into a fresh temporary.
    pub(super) fn expr(&mut self, e: &Expr) -> G<Reg> {
        let outer = self.asm.set_span(e.span);
        let r = self.expr_inner(e);
        self.asm.set_span(outer);
        r
    }

    fn alloc(&mut self) -> G<Reg> {
        Ok(self.regs.alloc(self.asm.span())?)
    }

    /// Moves a helper's result from `r0` into a fresh temporary.
    fn take_r0(&mut self) -> G<Reg> {
        let r = self.alloc()?;
        self.asm.emit(Insn::mov64_reg(r, Reg::R0));
        Ok(r)
    }

    fn expr_inner(&mut self, e: &Expr) -> G<Reg> {
        if e.ty.is_str() {
            return Err(self
                .internal("string used where an integer was expected")
                .into());
        }
        match &e.kind {
            ExprKind::Int(v) => {
                let r = self.alloc()?;
                self.load_imm(r, *v);
                Ok(r)
            }
            ExprKind::Bool(b) => {
                let r = self.alloc()?;
                self.asm.emit(Insn::mov64_imm(r, *b as i32));
                Ok(r)
            }
            ExprKind::Local(id) => match self.locals.get(id.0 as usize).copied().flatten() {
                Some(LocalSlot::Word(off)) => {
                    let r = self.alloc()?;
                    self.asm.emit(Insn::ldx(Size::DW, r, Reg::FP, off));
                    Ok(r)
                }
                _ => Err(self.internal("integer local read before it is set").into()),
            },
            ExprKind::Ctx(read) => self.ctx_read(*read, e.ty),
            ExprKind::Builtin(b) => self.builtin(*b),
            ExprKind::ReadInt { space, addr } => self.read_int(*space, addr, int_ty(e.ty)),
            ExprKind::Unary(op, inner) => {
                let r = self.expr(inner)?;
                match op {
                    UnOp::Neg => self.asm.emit(Insn::neg64(r)),
                    UnOp::Not => self.asm.emit(Insn::alu64_imm(AluOp::Xor, r, 1)),
                    UnOp::BitNot => self.asm.emit(Insn::alu64_imm(AluOp::Xor, r, -1)),
                }
                self.normalize(r, e.ty);
                Ok(r)
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, e.ty),
            ExprKind::Cast(inner) => {
                let r = self.expr(inner)?;
                self.normalize(r, e.ty);
                Ok(r)
            }
            ExprKind::Cmp(..) | ExprKind::StrMatch(..) | ExprKind::And(..) | ExprKind::Or(..) => {
                // A condition used as a value: 0, then 1 on the path where it holds.
                let r = self.alloc()?;
                self.asm.emit(Insn::mov64_imm(r, 0));
                let done = self.asm.new_label();
                self.cond(e, done, false)?;
                self.asm.emit(Insn::mov64_imm(r, 1));
                self.bind(done)?;
                Ok(r)
            }
            ExprKind::Str(_) | ExprKind::ReadStr { .. } => {
                Err(self.internal("string expression typed as integer").into())
            }
        }
    }

    pub(super) fn bind(&mut self, label: Label) -> G<()> {
        self.asm
            .bind(label)
            .map_err(|e| GenStop::Error(self.err(e.into())))
    }

    /// Brings a register holding a value of type `ty` to its canonical 64-bit form:
    /// zero-extended when unsigned, sign-extended when signed.
    pub(super) fn normalize(&mut self, r: Reg, ty: Ty) {
        let IntTy { bytes, signed } = int_ty(ty);
        if bytes >= 8 || ty == Ty::Bool {
            return;
        }
        let shift = 64 - 8 * bytes as i32;
        if signed {
            self.asm.emit(Insn::alu64_imm(AluOp::Lsh, r, shift));
            self.asm.emit(Insn::alu64_imm(AluOp::Arsh, r, shift));
        } else if bytes == 4 {
            self.asm.emit(Insn::alu32_reg(AluOp::Mov, r, r));
        } else {
            self.asm
                .emit(Insn::alu64_imm(AluOp::And, r, (1i32 << (8 * bytes)) - 1));
        }
    }

    fn ctx_read(&mut self, read: CtxRead, ty: Ty) -> G<Reg> {
        let (off, load_ty) = match (read, self.context) {
            (CtxRead::Field { offset, ty }, Context::TraceEvent) => (offset as i16, ty),
            (CtxRead::Arg(n), Context::PtRegs | Context::PerfEvent) => {
                let Some(&off) = PT_REGS_ARGS.get(n as usize) else {
                    return Err(self
                        .err(CodegenErrorKind::Unsupported(format!(
                            "argument {n} is passed on the stack; only arguments 0 to 5 can be read"
                        )))
                        .into());
                };
                (off, IntTy::U64)
            }
            (CtxRead::Arg(n), Context::U64Args) => (8 * n as i16, IntTy::U64),
            (CtxRead::RetVal, Context::PtRegs) => (PT_REGS_RC, IntTy::U64),
            (CtxRead::Ip, Context::PtRegs | Context::PerfEvent) => (PT_REGS_IP, IntTy::U64),
            (CtxRead::DataLocStr { .. } | CtxRead::InlineStr { .. }, _) => {
                return Err(self.internal("string context read typed as integer").into());
            }
            (read, context) => {
                return Err(self
                    .err(CodegenErrorKind::Unsupported(format!(
                        "{read:?} cannot be read from a {context:?} context"
                    )))
                    .into());
            }
        };
        let r = self.alloc()?;
        let size = Size::from_bytes(load_ty.bytes as u32)
            .ok_or_else(|| GenStop::Error(self.internal("field width not 1, 2, 4 or 8")))?;
        self.asm.emit(Insn::ldx(size, r, CTX_REG, off));
        if load_ty.signed {
            self.normalize(r, Ty::Int(load_ty));
        }
        if ty != Ty::Int(load_ty) {
            self.normalize(r, ty);
        }
        Ok(r)
    }

    fn builtin(&mut self, b: Builtin) -> G<Reg> {
        self.builtin_in_r0(b)?;
        self.take_r0()
    }

    /// Computes an integer builtin into `r0`, where its helper leaves it: a value stored
    /// straight to memory needs no temporary.
    pub(super) fn builtin_in_r0(&mut self, b: Builtin) -> G<()> {
        let (helper, high_half) = match b {
            Builtin::Pid => (Helper::GetCurrentPidTgid, Some(true)),
            Builtin::Tid => (Helper::GetCurrentPidTgid, Some(false)),
            Builtin::Gid => (Helper::GetCurrentUidGid, Some(true)),
            Builtin::Uid => (Helper::GetCurrentUidGid, Some(false)),
            Builtin::Ktime => (Helper::KtimeGetNs, None),
            Builtin::Cpu => (Helper::GetSmpProcessorId, None),
            Builtin::Comm => return Err(self.internal("comm typed as integer").into()),
        };
        self.call(helper, &[])?;
        match high_half {
            Some(true) => self.asm.emit(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32)),
            Some(false) => self.asm.emit(Insn::alu32_reg(AluOp::Mov, Reg::R0, Reg::R0)),
            None => {}
        }
        Ok(())
    }

    /// Reads an integer of `ty` from the address `addr` evaluates to. A failed read gives 0.
    fn read_int(&mut self, space: AddrSpace, addr: &Expr, ty: IntTy) -> G<Reg> {
        let a = self.expr(addr)?;
        let slot = self.frame.alloc(8, self.asm.span())?;
        let dst = Buf {
            base: Base::Stack,
            off: slot as i32,
            cap: 8,
        };
        let size = ty.bytes as i64;
        match space {
            AddrSpace::User | AddrSpace::Kernel => {
                let helper = if space == AddrSpace::User {
                    Helper::ProbeReadUser
                } else {
                    Helper::ProbeReadKernel
                };
                self.call(helper, &[Arg::Addr(dst), Arg::Imm(size), Arg::Temp(a)])?;
            }
            AddrSpace::Auto => {
                let keep = self.frame.alloc(8, self.asm.span())?;
                self.asm.emit(Insn::stx(Size::DW, Reg::FP, keep, a));
                self.call(
                    Helper::ProbeReadUser,
                    &[Arg::Addr(dst), Arg::Imm(size), Arg::Temp(a)],
                )?;
                let done = self.asm.new_label();
                self.asm.jump_imm(JmpOp::Eq, Reg::R0, 0, done);
                self.call(
                    Helper::ProbeReadKernel,
                    &[Arg::Addr(dst), Arg::Imm(size), Arg::StackWord(keep)],
                )?;
                self.bind(done)?;
            }
        }
        let r = self.alloc()?;
        let load = Size::from_bytes(ty.bytes as u32)
            .ok_or_else(|| GenStop::Error(self.internal("read width not 1, 2, 4 or 8")))?;
        self.asm.emit(Insn::ldx(load, r, Reg::FP, slot));
        if ty.signed {
            self.normalize(r, Ty::Int(ty));
        }
        Ok(r)
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, ty: Ty) -> G<Reg> {
        let signed = is_signed(a.ty) || is_signed(b.ty);
        let ra = self.expr(a)?;
        let alu = match op {
            BinOp::Add => AluOp::Add,
            BinOp::Sub => AluOp::Sub,
            BinOp::Mul => AluOp::Mul,
            BinOp::Div => AluOp::Div,
            BinOp::Mod => AluOp::Mod,
            BinOp::BitAnd => AluOp::And,
            BinOp::BitOr => AluOp::Or,
            BinOp::BitXor => AluOp::Xor,
            BinOp::Shl => AluOp::Lsh,
            BinOp::Shr if signed => AluOp::Arsh,
            BinOp::Shr => AluOp::Rsh,
        };
        let signed_division = signed && matches!(op, BinOp::Div | BinOp::Mod);
        match (&b.kind, signed_division) {
            (ExprKind::Int(v), false) if i32::try_from(*v).is_ok() => {
                self.asm.emit(Insn::alu64_imm(alu, ra, *v as i32));
            }
            _ => {
                let rb = self.expr(b)?;
                if signed_division {
                    self.signed_division(op, ra, rb)?;
                } else {
                    self.asm.emit(Insn::alu64_reg(alu, ra, rb));
                }
                self.regs.free(rb);
            }
        }
        self.normalize(ra, ty);
        Ok(ra)
    }

    /// `ra = ra / rb` or `ra % rb` on signed values, truncating toward zero, through
    /// unsigned division of the magnitudes (eBPF's signed division needs kernel 6.6).
    fn signed_division(&mut self, op: BinOp, ra: Reg, rb: Reg) -> G<()> {
        let sign = self.alloc()?;
        self.asm.emit(Insn::mov64_reg(sign, ra));
        if op == BinOp::Div {
            self.asm.emit(Insn::alu64_reg(AluOp::Xor, sign, rb));
        }
        for r in [ra, rb] {
            let positive = self.asm.new_label();
            self.asm.jump_imm(JmpOp::Sge, r, 0, positive);
            self.asm.emit(Insn::neg64(r));
            self.bind(positive)?;
        }
        let alu = if op == BinOp::Div {
            AluOp::Div
        } else {
            AluOp::Mod
        };
        self.asm.emit(Insn::alu64_reg(alu, ra, rb));
        let done = self.asm.new_label();
        self.asm.jump_imm(JmpOp::Sge, sign, 0, done);
        self.asm.emit(Insn::neg64(ra));
        self.bind(done)?;
        self.regs.free(sign);
        Ok(())
    }

    /// Branches to `target` when `e` evaluates to `when`; falls through otherwise.
    pub(super) fn cond(&mut self, e: &Expr, target: Label, when: bool) -> G<()> {
        let outer = self.asm.set_span(e.span);
        let r = self.cond_inner(e, target, when);
        self.asm.set_span(outer);
        r
    }

    fn cond_inner(&mut self, e: &Expr, target: Label, when: bool) -> G<()> {
        match &e.kind {
            ExprKind::Bool(b) => {
                if *b == when {
                    self.asm.goto(target);
                }
                Ok(())
            }
            ExprKind::Unary(UnOp::Not, inner) => self.cond(inner, target, !when),
            ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                // `a and b` jumps when false as soon as `a` is false; `a or b` dually.
                let is_and = matches!(e.kind, ExprKind::And(..));
                if is_and != when {
                    self.cond(a, target, when)?;
                    self.cond(b, target, when)
                } else {
                    let skip = self.asm.new_label();
                    self.cond(a, skip, !when)?;
                    self.cond(b, target, when)?;
                    self.bind(skip)
                }
            }
            ExprKind::Cmp(op, a, b) if a.ty.is_str() || b.ty.is_str() => {
                let (CmpOp::Eq | CmpOp::Ne) = op else {
                    return Err(self.internal("strings compared by order").into());
                };
                let want_equal = (*op == CmpOp::Eq) == when;
                match (&a.kind, &b.kind) {
                    (_, ExprKind::Str(lit)) => self.str_match(a, lit, true, want_equal, target),
                    (ExprKind::Str(lit), _) => self.str_match(b, lit, true, want_equal, target),
                    _ => self.str_eq_bufs(a, b, want_equal, target),
                }
            }
            ExprKind::Cmp(op, a, b) => {
                let signed = is_signed(a.ty) || is_signed(b.ty);
                let mut jmp = match (op, signed) {
                    (CmpOp::Eq, _) => JmpOp::Eq,
                    (CmpOp::Ne, _) => JmpOp::Ne,
                    (CmpOp::Lt, false) => JmpOp::Lt,
                    (CmpOp::Le, false) => JmpOp::Le,
                    (CmpOp::Gt, false) => JmpOp::Gt,
                    (CmpOp::Ge, false) => JmpOp::Ge,
                    (CmpOp::Lt, true) => JmpOp::Slt,
                    (CmpOp::Le, true) => JmpOp::Sle,
                    (CmpOp::Gt, true) => JmpOp::Sgt,
                    (CmpOp::Ge, true) => JmpOp::Sge,
                };
                if !when {
                    jmp = jmp.negate();
                }
                let ra = self.expr(a)?;
                match &b.kind {
                    // The immediate is sign-extended to 64 bits, which matches our
                    // canonical register form for every value in i32 range except
                    // unsigned comparisons against negative numbers, which the front end
                    // never produces (and which go through a register below anyway).
                    ExprKind::Int(v) if i32::try_from(*v).is_ok() && (signed || *v >= 0) => {
                        self.asm.jump_imm(jmp, ra, *v as i32, target);
                    }
                    _ => {
                        let rb = self.expr(b)?;
                        self.asm.jump_reg(jmp, ra, rb, target);
                        self.regs.free(rb);
                    }
                }
                self.regs.free(ra);
                Ok(())
            }
            ExprKind::StrMatch(op, s, lit) => {
                let (exact, want_match) = match op {
                    StrOp::Eq => (true, when),
                    StrOp::Ne => (true, !when),
                    StrOp::StartsWith => (false, when),
                    StrOp::EndsWith => return self.str_ends_with(s, lit, when, target),
                };
                self.str_match(s, lit, exact, want_match, target)
            }
            _ => {
                let r = self.expr(e)?;
                let op = if when { JmpOp::Ne } else { JmpOp::Eq };
                self.asm.jump_imm(op, r, 0, target);
                self.regs.free(r);
                Ok(())
            }
        }
    }

    /// Compares the string `s` with `lit` (whole string when `exact`, else as a prefix) and
    /// jumps to `target` when the outcome is `want_match`.
    fn str_match(
        &mut self,
        s: &Expr,
        lit: &[u8],
        exact: bool,
        want_match: bool,
        target: Label,
    ) -> G<()> {
        let scratch = self.scratch_mark();
        let buf = self.str_buf(s)?;
        let mut bytes = lit.to_vec();
        if exact {
            bytes.push(0);
        }
        // Mismatches jump straight to `target` when that is where a mismatch goes, else to
        // a label after the jump to `target` taken when every chunk matched.
        let skip = self.asm.new_label();
        let mismatch = if want_match { skip } else { target };
        if bytes.len() as u32 > buf.cap {
            // The literal cannot fit the buffer: it can never match.
            self.asm.goto(mismatch);
        } else {
            let base = buf.base_reg();
            let t = self.alloc()?;
            let mut at = 0usize;
            for (size, chunk) in chunks(bytes.len()) {
                let piece = &bytes[at..at + chunk];
                let off = (buf.off + at as i32) as i16;
                self.asm.emit(Insn::ldx(size, t, base, off));
                let mut value = [0u8; 8];
                value[..chunk].copy_from_slice(piece);
                let value = u64::from_le_bytes(value);
                match size {
                    Size::DW => {
                        let c = self.alloc()?;
                        self.asm.emit_wide(Insn::ld_imm64(c, value));
                        self.asm.jump_reg(JmpOp::Ne, t, c, mismatch);
                        self.regs.free(c);
                    }
                    Size::W => {
                        self.asm
                            .jump32_imm(JmpOp::Ne, t, value as u32 as i32, mismatch);
                    }
                    _ => self.asm.jump_imm(JmpOp::Ne, t, value as i32, mismatch),
                }
                at += chunk;
            }
            self.regs.free(t);
        }
        if want_match {
            self.asm.goto(target);
        }
        self.bind(skip)?;
        self.scratch_reset(scratch);
        Ok(())
    }

    /// Tests whether string `s` ends with `lit`: finds its length with a bounded loop, then
    /// compares the last `lit.len()` bytes. Jumps to `target` when the outcome is `want_match`.
    fn str_ends_with(&mut self, s: &Expr, lit: &[u8], want_match: bool, target: Label) -> G<()> {
        let scratch = self.scratch_mark();
        let buf = self.str_buf(s)?;
        let skip = self.asm.new_label();
        let mismatch = if want_match { skip } else { target };
        let max_len = buf.cap.saturating_sub(1);
        if lit.is_empty() {
            if want_match {
                self.asm.goto(target);
            }
        } else if lit.len() as u32 > max_len {
            self.asm.goto(mismatch);
        } else {
            let (i, p, t) = (self.alloc()?, self.alloc()?, self.alloc()?);
            let top = self.asm.new_label();
            let found = self.asm.new_label();
            self.asm.emit(Insn::mov64_imm(i, 0));
            self.bind(top)?;
            self.asm.jump_imm(JmpOp::Ge, i, max_len as i32, found);
            self.addr_of(p, buf);
            self.asm.emit(Insn::alu64_reg(AluOp::Add, p, i));
            self.asm.emit(Insn::ldx(Size::B, t, p, 0));
            self.asm.jump_imm(JmpOp::Eq, t, 0, found);
            self.asm.emit(Insn::alu64_imm(AluOp::Add, i, 1));
            self.asm.goto(top);
            self.bind(found)?;
            // `i` is the length; the suffix starts at `i - len(lit)`.
            self.asm.jump_imm(JmpOp::Lt, i, lit.len() as i32, mismatch);
            self.addr_of(p, buf);
            self.asm.emit(Insn::alu64_reg(AluOp::Add, p, i));
            for (k, &byte) in lit.iter().enumerate() {
                let off = k as i16 - lit.len() as i16;
                self.asm.emit(Insn::ldx(Size::B, t, p, off));
                self.asm.jump_imm(JmpOp::Ne, t, byte as i32, mismatch);
            }
            self.regs.free(t);
            self.regs.free(p);
            self.regs.free(i);
            if want_match {
                self.asm.goto(target);
            }
        }
        self.bind(skip)?;
        self.scratch_reset(scratch);
        Ok(())
    }

    /// Compares two runtime strings byte by byte up to the first NUL.
    fn str_eq_bufs(&mut self, a: &Expr, b: &Expr, want_equal: bool, target: Label) -> G<()> {
        let scratch = self.scratch_mark();
        let ba = self.str_buf(a)?;
        let bb = self.str_buf(b)?;
        let n = ba.cap.min(bb.cap);
        if n > 64 {
            return Err(self
                .err(CodegenErrorKind::Unsupported(
                    "comparing two strings longer than 64 bytes; compare one with a literal".into(),
                ))
                .into());
        }
        // `equal` and `differ` are where the two outcomes go: one of them is `target`.
        let skip = self.asm.new_label();
        let (equal, differ) = if want_equal {
            (target, skip)
        } else {
            (skip, target)
        };
        let x = self.alloc()?;
        let y = self.alloc()?;
        for i in 0..n as i32 {
            self.asm
                .emit(Insn::ldx(Size::B, x, ba.base_reg(), (ba.off + i) as i16));
            self.asm
                .emit(Insn::ldx(Size::B, y, bb.base_reg(), (bb.off + i) as i16));
            self.asm.jump_reg(JmpOp::Ne, x, y, differ);
            self.asm.jump_imm(JmpOp::Eq, x, 0, equal);
        }
        self.regs.free(y);
        self.regs.free(x);
        // Both buffers are full and equal so far: treat them as equal.
        if want_equal {
            self.asm.goto(target);
        }
        self.bind(skip)?;
        self.scratch_reset(scratch);
        Ok(())
    }

    /// The buffer holding string `e`: a local's own buffer, or a temporary filled here.
    pub(super) fn str_buf(&mut self, e: &Expr) -> G<Buf> {
        if let ExprKind::Local(id) = e.kind {
            return match self.locals.get(id.0 as usize).copied().flatten() {
                Some(LocalSlot::Str(buf)) => Ok(buf),
                _ => Err(self.internal("string local read before it is set").into()),
            };
        }
        let Ty::Str { cap } = e.ty else {
            return Err(self
                .internal("integer used where a string was expected")
                .into());
        };
        let buf = self.alloc_buf(cap as u32, STACK_STR_MAX)?;
        self.str_into(e, buf)?;
        Ok(buf)
    }

    /// Writes string `e` into `dst`, NUL-terminated within `dst.cap` bytes.
    pub(super) fn str_into(&mut self, e: &Expr, dst: Buf) -> G<()> {
        let outer = self.asm.set_span(e.span);
        let r = self.str_into_inner(e, dst);
        self.asm.set_span(outer);
        r
    }

    fn str_into_inner(&mut self, e: &Expr, dst: Buf) -> G<()> {
        let cap = dst.cap as i64;
        match &e.kind {
            ExprKind::Str(lit) => {
                let mut bytes = lit.clone();
                bytes.truncate(dst.cap.saturating_sub(1) as usize);
                bytes.push(0);
                self.store_bytes(dst, &bytes)
            }
            ExprKind::Local(_) => {
                let src = self.str_buf(e)?;
                self.copy_buf(src, dst)
            }
            ExprKind::Builtin(Builtin::Comm) => {
                self.call(
                    Helper::GetCurrentComm,
                    &[Arg::Addr(dst), Arg::Imm(cap.min(16))],
                )?;
                Ok(())
            }
            ExprKind::ReadStr { space, addr } => {
                let a = self.expr(addr)?;
                self.read_str(*space, dst, a)
            }
            &ExprKind::Ctx(CtxRead::DataLocStr { offset }) => {
                if self.context != Context::TraceEvent {
                    return Err(self.internal("__data_loc read outside a tracepoint").into());
                }
                // The locator's low 16 bits are the string's offset in the event record.
                let a = self.alloc()?;
                self.asm.emit(Insn::ldx(Size::W, a, CTX_REG, offset as i16));
                self.asm.emit(Insn::alu64_imm(AluOp::And, a, 0xffff));
                self.asm.emit(Insn::alu64_reg(AluOp::Add, a, CTX_REG));
                self.read_str(AddrSpace::Kernel, dst, a)
            }
            &ExprKind::Ctx(CtxRead::InlineStr { offset, len }) => {
                if self.context != Context::TraceEvent {
                    return Err(self
                        .internal("inline string read outside a tracepoint")
                        .into());
                }
                let a = self.alloc()?;
                self.asm.emit(Insn::mov64_reg(a, CTX_REG));
                self.asm.emit(Insn::alu64_imm(AluOp::Add, a, offset as i32));
                let size = (len as u32).min(dst.cap);
                self.read_str(AddrSpace::Kernel, dst.at(0, size), a)
            }
            _ => Err(self.internal("expression is not a string").into()),
        }
    }

    /// `probe_read_*_str(dst, dst.cap, a)`, consuming the temporary `a`.
    fn read_str(&mut self, space: AddrSpace, dst: Buf, a: Reg) -> G<()> {
        let cap = dst.cap as i64;
        match space {
            AddrSpace::User | AddrSpace::Kernel => {
                let helper = if space == AddrSpace::User {
                    Helper::ProbeReadUserStr
                } else {
                    Helper::ProbeReadKernelStr
                };
                self.call(helper, &[Arg::Addr(dst), Arg::Imm(cap), Arg::Temp(a)])?;
            }
            AddrSpace::Auto => {
                // User first: a kernel address fails `access_ok` there and vice versa, so
                // at most one of the two reads succeeds.
                let keep = self.frame.alloc(8, self.asm.span())?;
                self.asm.emit(Insn::stx(Size::DW, Reg::FP, keep, a));
                self.call(
                    Helper::ProbeReadUserStr,
                    &[Arg::Addr(dst), Arg::Imm(cap), Arg::Temp(a)],
                )?;
                let done = self.asm.new_label();
                self.asm.jump_imm(JmpOp::Sgt, Reg::R0, 0, done);
                self.call(
                    Helper::ProbeReadKernelStr,
                    &[Arg::Addr(dst), Arg::Imm(cap), Arg::StackWord(keep)],
                )?;
                self.bind(done)?;
            }
        }
        Ok(())
    }

    /// Stores literal bytes into `dst` in aligned chunks.
    fn store_bytes(&mut self, dst: Buf, bytes: &[u8]) -> G<()> {
        let base = dst.base_reg();
        let mut at = 0usize;
        for (size, chunk) in chunks(bytes.len()) {
            let mut v = [0u8; 8];
            v[..chunk].copy_from_slice(&bytes[at..at + chunk]);
            let off = (dst.off + at as i32) as i16;
            if size == Size::DW {
                let value = u64::from_le_bytes(v);
                if let Ok(small) = i32::try_from(value as i64) {
                    self.asm.emit(Insn::st_imm(Size::DW, base, off, small));
                } else {
                    let t = self.alloc()?;
                    self.asm.emit_wide(Insn::ld_imm64(t, value));
                    self.asm.emit(Insn::stx(Size::DW, base, off, t));
                    self.regs.free(t);
                }
            } else {
                let value = u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as i32;
                self.asm.emit(Insn::st_imm(size, base, off, value));
            }
            at += chunk;
        }
        Ok(())
    }

    /// Copies a string buffer into another (up to the smaller capacity, NUL kept).
    fn copy_buf(&mut self, src: Buf, dst: Buf) -> G<()> {
        let n = src.cap.min(dst.cap);
        if n > 64 {
            self.call(
                Helper::ProbeReadKernelStr,
                &[Arg::Addr(dst), Arg::Imm(n as i64), Arg::Addr(src)],
            )?;
            return Ok(());
        }
        let t = self.alloc()?;
        let mut at = 0i32;
        for (size, chunk) in chunks(n as usize) {
            self.asm
                .emit(Insn::ldx(size, t, src.base_reg(), (src.off + at) as i16));
            self.asm
                .emit(Insn::stx(size, dst.base_reg(), (dst.off + at) as i16, t));
            at += chunk as i32;
        }
        if n < src.cap {
            // Truncated: terminate it.
            self.asm.emit(Insn::st_imm(
                Size::B,
                dst.base_reg(),
                (dst.off + n as i32 - 1) as i16,
                0,
            ));
        }
        self.regs.free(t);
        Ok(())
    }
}

/// Splits `len` bytes from an 8-aligned start into naturally aligned 8/4/2/1-byte accesses.
pub(super) fn chunks(len: usize) -> Vec<(Size, usize)> {
    let mut out = Vec::new();
    let mut left = len;
    for (size, n) in [(Size::DW, 8), (Size::W, 4), (Size::H, 2), (Size::B, 1)] {
        while left >= n {
            out.push((size, n));
            left -= n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chunks;
    use crate::insn::Size;

    #[test]
    fn chunks_are_aligned_and_cover_everything() {
        assert_eq!(
            chunks(15),
            vec![(Size::DW, 8), (Size::W, 4), (Size::H, 2), (Size::B, 1)]
        );
        assert_eq!(chunks(16), vec![(Size::DW, 8), (Size::DW, 8)]);
        assert!(chunks(0).is_empty());
    }
}
