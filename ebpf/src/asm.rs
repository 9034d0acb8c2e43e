//! The instruction builder: labels with jump fix-ups, map references and a span per
//! instruction.
//!
//! Codegen appends instructions here and never computes a jump offset itself. `finish`
//! resolves every label; a jump that does not fit the 16-bit offset is an error, not a wrap.
//! Code after an unconditional jump or `exit` that no label makes reachable again is
//! dropped as it is emitted: the verifier rejects unreachable instructions.

use crate::helpers::Helper;
use crate::insn::{Insn, JmpOp, Reg};
use crate::maps::MapId;
use crate::span::Span;

/// A jump target, bound to an instruction index with [`Asm::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(u32);

/// Errors that make a sequence of instructions unassemblable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    /// A jump refers to a label that was never bound.
    #[error("label {0} is used but never bound")]
    UnboundLabel(u32),
    /// A label was bound twice.
    #[error("label {0} is bound twice")]
    ReboundLabel(u32),
    /// The distance between a jump and its target does not fit a signed 16-bit offset.
    #[error("jump at instruction {from} to {to} does not fit a 16-bit offset")]
    JumpTooFar { from: usize, to: usize },
}

/// A finished instruction sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assembled {
    pub insns: Vec<Insn>,
    /// `spans[i]` is the source span that produced `insns[i]`.
    pub spans: Vec<Span>,
    /// Instruction indices of `ld_imm64` map loads and the map each refers to.
    pub map_refs: Vec<(usize, MapId)>,
}

#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    spans: Vec<Span>,
    span: Span,
    labels: Vec<Option<usize>>,
    /// `targeted[l]`: some kept jump goes to label `l`.
    targeted: Vec<bool>,
    fixups: Vec<(usize, Label)>,
    map_refs: Vec<(usize, MapId)>,
    /// False after an unconditional jump or exit, until a label some jump targets.
    dead: bool,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    /// True when the next instruction can be reached (and will therefore be kept).
    pub fn is_reachable(&self) -> bool {
        !self.dead
    }

    /// Sets the span attributed to the instructions emitted from now on; returns the old one.
    pub fn set_span(&mut self, span: Span) -> Span {
        std::mem::replace(&mut self.span, span)
    }

    pub fn span(&self) -> Span {
        self.span
    }

    /// The index the next instruction will get.
    pub fn pc(&self) -> usize {
        self.insns.len()
    }

    pub fn emit(&mut self, insn: Insn) {
        if self.dead {
            return;
        }
        self.insns.push(insn);
        self.spans.push(self.span);
        let ends_flow = insn.code == Insn::exit().code || insn.code == Insn::ja(0).code;
        if ends_flow {
            self.dead = true;
        }
    }

    pub fn emit_wide(&mut self, pair: [Insn; 2]) {
        self.emit(pair[0]);
        self.emit(pair[1]);
    }

    /// Records a fix-up for the jump about to be emitted at `pc`, if it will be kept.
    fn fixup(&mut self, label: Label) {
        if !self.dead {
            self.fixups.push((self.pc(), label));
            self.targeted[label.0 as usize] = true;
        }
    }

    pub fn new_label(&mut self) -> Label {
        self.labels.push(None);
        self.targeted.push(false);
        Label(self.labels.len() as u32 - 1)
    }

    /// Binds `label` to the next instruction.
    pub fn bind(&mut self, label: Label) -> Result<(), AsmError> {
        let slot = &mut self.labels[label.0 as usize];
        if slot.is_some() {
            return Err(AsmError::ReboundLabel(label.0));
        }
        *slot = Some(self.insns.len());
        if self.targeted[label.0 as usize] {
            self.dead = false;
        }
        Ok(())
    }

    /// `if dst <op> imm goto label`
    pub fn jump_imm(&mut self, op: JmpOp, dst: Reg, imm: i32, label: Label) {
        self.fixup(label);
        self.emit(Insn::jmp_imm(op, dst, imm, 0));
    }

    /// `if dst <op> src goto label`
    pub fn jump_reg(&mut self, op: JmpOp, dst: Reg, src: Reg, label: Label) {
        self.fixup(label);
        self.emit(Insn::jmp_reg(op, dst, src, 0));
    }

    /// `if (u32)dst <op> imm goto label`, comparing the low 32 bits only.
    pub fn jump32_imm(&mut self, op: JmpOp, dst: Reg, imm: i32, label: Label) {
        self.fixup(label);
        self.emit(Insn::jmp32_imm(op, dst, imm, 0));
    }

    /// `goto label`
    pub fn goto(&mut self, label: Label) {
        self.fixup(label);
        self.emit(Insn::ja(0));
    }

    /// `dst = map` (an `ld_imm64` the loader patches with the map's fd).
    pub fn ld_map(&mut self, dst: Reg, map: MapId) {
        if !self.dead {
            self.map_refs.push((self.pc(), map));
        }
        self.emit_wide(Insn::ld_map(dst));
    }

    pub fn call(&mut self, helper: Helper) {
        self.emit(Insn::call(helper.id()));
    }

    /// Resolves labels and returns the finished sequence.
    pub fn finish(mut self) -> Result<Assembled, AsmError> {
        for &(at, label) in &self.fixups {
            let target = self.labels[label.0 as usize].ok_or(AsmError::UnboundLabel(label.0))?;
            let delta = target as i64 - (at as i64 + 1);
            let off = i16::try_from(delta).map_err(|_| AsmError::JumpTooFar {
                from: at,
                to: target,
            })?;
            self.insns[at].off = off;
        }
        Ok(Assembled {
            insns: self.insns,
            spans: self.spans,
            map_refs: self.map_refs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_backward_labels_resolve() {
        let mut a = Asm::new();
        let top = a.new_label();
        let end = a.new_label();
        a.bind(top).unwrap();
        a.emit(Insn::mov64_imm(Reg::R0, 0)); // 0
        a.jump_imm(JmpOp::Eq, Reg::R0, 0, end); // 1 -> 4
        a.emit(Insn::mov64_imm(Reg::R0, 1)); // 2
        a.goto(top); // 3 -> 0
        a.bind(end).unwrap();
        a.emit(Insn::exit()); // 4
        let out = a.finish().unwrap();
        assert_eq!(out.insns[1].off, 2);
        assert_eq!(out.insns[3].off, -4);
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut a = Asm::new();
        let l = a.new_label();
        a.goto(l);
        assert_eq!(a.finish(), Err(AsmError::UnboundLabel(0)));
    }

    #[test]
    fn rebinding_a_label_is_an_error() {
        let mut a = Asm::new();
        let l = a.new_label();
        a.bind(l).unwrap();
        assert_eq!(a.bind(l), Err(AsmError::ReboundLabel(0)));
    }

    #[test]
    fn too_far_jump_is_an_error_not_a_wrap() {
        let mut a = Asm::new();
        let end = a.new_label();
        a.jump_imm(JmpOp::Eq, Reg::R1, 0, end);
        for _ in 0..40_000 {
            a.emit(Insn::mov64_imm(Reg::R0, 0));
        }
        a.bind(end).unwrap();
        a.emit(Insn::exit());
        assert_eq!(
            a.finish(),
            Err(AsmError::JumpTooFar {
                from: 0,
                to: 40_001
            })
        );
    }

    #[test]
    fn jump_of_exactly_i16_max_fits() {
        let mut a = Asm::new();
        let end = a.new_label();
        a.jump_imm(JmpOp::Eq, Reg::R1, 0, end);
        for _ in 0..i16::MAX {
            a.emit(Insn::mov64_imm(Reg::R0, 0));
        }
        a.bind(end).unwrap();
        a.emit(Insn::exit());
        assert_eq!(a.finish().unwrap().insns[0].off, i16::MAX);
    }

    #[test]
    fn code_after_an_unconditional_jump_is_dropped_until_a_target() {
        let mut a = Asm::new();
        let used = a.new_label();
        let unused = a.new_label();
        a.goto(used); // 0
        a.emit(Insn::mov64_imm(Reg::R0, 1)); // dead
        a.bind(unused).unwrap();
        a.emit(Insn::mov64_imm(Reg::R0, 2)); // still dead: nothing jumps to `unused`
        a.bind(used).unwrap();
        a.emit(Insn::exit()); // 1
        a.emit(Insn::exit()); // dead
        let out = a.finish().unwrap();
        assert_eq!(out.insns, vec![Insn::ja(0), Insn::exit()]);
    }

    #[test]
    fn spans_follow_each_instruction() {
        let mut a = Asm::new();
        a.set_span(Span::new(3, 7));
        a.emit(Insn::mov64_imm(Reg::R0, 0));
        a.ld_map(Reg::R1, MapId(2));
        a.set_span(Span::new(9, 11));
        a.emit(Insn::exit());
        let out = a.finish().unwrap();
        assert_eq!(
            out.spans,
            vec![
                Span::new(3, 7),
                Span::new(3, 7),
                Span::new(3, 7),
                Span::new(9, 11)
            ]
        );
        assert_eq!(out.map_refs, vec![(1, MapId(2))]);
    }
}
