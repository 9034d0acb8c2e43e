//! Source spans carried from the front end through the IR to every emitted instruction.
//!
//! A span is a half-open byte range in whatever text the front end compiled; this crate
//! never looks at that text.

/// A half-open byte range `start..end` in the probe source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub const fn new(start: u32, end: u32) -> Span {
        Span { start, end }
    }

    /// The span for code no source text produced (prologue, epilogue).
    pub const DUMMY: Span = Span { start: 0, end: 0 };

    pub fn is_dummy(&self) -> bool {
        self.start == 0 && self.end == 0
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}
