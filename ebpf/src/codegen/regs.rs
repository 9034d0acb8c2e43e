//! Temporary registers and the stack frame: the two resources codegen allocates per probe.

use super::{CodegenError, CodegenErrorKind, STACK_LIMIT};
use crate::insn::Reg;
use crate::span::Span;

/// The expression temporaries `r1`–`r5`.
#[derive(Debug, Default)]
pub(super) struct Regs {
    /// Bit `i` set: `r<i>` is taken.
    taken: u8,
}

impl Regs {
    pub(super) fn alloc(&mut self, span: Span) -> Result<Reg, CodegenError> {
        for i in 1..=5u8 {
            if self.taken & (1 << i) == 0 {
                self.taken |= 1 << i;
                return Ok(Reg(i));
            }
        }
        Err(CodegenError::new(CodegenErrorKind::TooComplex, span))
    }

    pub(super) fn free(&mut self, r: Reg) {
        debug_assert!(self.taken & (1 << r.0) != 0, "freeing free {r}");
        self.taken &= !(1 << r.0);
    }

    /// The taken temporaries, lowest first.
    pub(super) fn live(&self) -> Vec<Reg> {
        (1..=5u8)
            .filter(|i| self.taken & (1 << i) != 0)
            .map(Reg)
            .collect()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.taken == 0
    }
}

/// A bump allocator over the 512-byte stack, reset at the end of each statement.
#[derive(Debug, Default)]
pub(super) struct Frame {
    used: u32,
    peak: u32,
}

impl Frame {
    /// Allocates `size` bytes (rounded up to 8) and returns their offset from `r10`.
    pub(super) fn alloc(&mut self, size: u32, span: Span) -> Result<i16, CodegenError> {
        let used = self.used + size.next_multiple_of(8);
        if used > STACK_LIMIT {
            return Err(CodegenError::new(
                CodegenErrorKind::StackOverflow { needed: used },
                span,
            ));
        }
        self.used = used;
        self.peak = self.peak.max(used);
        Ok(-(used as i16))
    }

    pub(super) fn mark(&self) -> u32 {
        self.used
    }

    pub(super) fn reset(&mut self, mark: u32) {
        self.used = mark;
    }

    pub(super) fn peak(&self) -> u32 {
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_run_out_after_five() {
        let mut r = Regs::default();
        let got: Vec<_> = (0..5).map(|_| r.alloc(Span::DUMMY).unwrap()).collect();
        assert_eq!(got, vec![Reg::R1, Reg::R2, Reg::R3, Reg::R4, Reg::R5]);
        assert!(r.alloc(Span::DUMMY).is_err());
        r.free(Reg::R3);
        assert_eq!(r.alloc(Span::DUMMY).unwrap(), Reg::R3);
    }

    #[test]
    fn stack_limit_is_checked() {
        let mut f = Frame::default();
        assert_eq!(f.alloc(500, Span::DUMMY).unwrap(), -504);
        let err = f.alloc(16, Span::new(1, 2)).unwrap_err();
        assert_eq!(err.kind, CodegenErrorKind::StackOverflow { needed: 520 });
        assert_eq!(err.span, Span::new(1, 2));
        f.reset(0);
        assert_eq!(f.alloc(8, Span::DUMMY).unwrap(), -8);
        assert_eq!(f.peak(), 504);
    }
}
