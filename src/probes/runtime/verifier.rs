//! Verifier rejections: the kernel's log kept whole, the failing instruction found in it,
//! and that instruction mapped back to the source span that produced it.

use nubpf_ebpf::{CompiledProgram, Span};

/// A program the kernel's verifier refused to load.
#[derive(Debug)]
pub struct VerifierRejection {
    /// The program's name in the object.
    pub program: String,
    /// The errno of `BPF_PROG_LOAD`.
    pub io_error: std::io::Error,
    /// The verifier's full log.
    pub log: String,
    /// The instruction the verifier was at when it gave up, if the log names one.
    pub insn: Option<usize>,
    /// The source span of that instruction.
    pub span: Option<Span>,
    /// The verifier's own explanation (the log's last non-statistics lines).
    pub message: String,
}

impl VerifierRejection {
    pub fn new(program: &CompiledProgram, io_error: std::io::Error, log: String) -> Self {
        let insn = failing_insn(&log);
        VerifierRejection {
            program: program.name.clone(),
            span: insn.and_then(|i| program.span_at(i)),
            message: explanation(&log),
            io_error,
            insn,
            log,
        }
    }
}

impl std::fmt::Display for VerifierRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the kernel verifier rejected `{}`", self.program)?;
        if let Some(i) = self.insn {
            write!(f, " at instruction {i}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The index of the last instruction line (`12: (85) call ...`) in a verifier log.
pub fn failing_insn(log: &str) -> Option<usize> {
    log.lines().rev().find_map(|line| {
        let (index, rest) = line.split_once(": (")?;
        if rest.get(2..3) != Some(")") {
            return None;
        }
        index.trim().parse().ok()
    })
}

/// The lines after the last instruction line, minus the statistics the log ends with.
fn explanation(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let last_insn = lines
        .iter()
        .rposition(|l| failing_insn(l).is_some())
        .map_or(0, |i| i + 1);
    let text: Vec<&str> = lines[last_insn..]
        .iter()
        .map(|l| l.trim())
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
        })
        .collect();
    if text.is_empty() {
        "no explanation in the verifier log".to_string()
    } else {
        text.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
func#0 @0
0: R1=ctx() R10=fp0
0: (bf) r6 = r1                       ; R1=ctx() R6_w=ctx()
1: (b7) r0 = 0                        ; R0_w=0
2: (79) r1 = *(u64 *)(r10 -8)
invalid read from stack R10 off=-8 size=8
processed 3 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
";

    #[test]
    fn finds_the_failing_instruction_and_the_reason() {
        assert_eq!(failing_insn(LOG), Some(2));
        assert_eq!(
            explanation(LOG),
            "invalid read from stack R10 off=-8 size=8"
        );
    }

    #[test]
    fn a_log_without_instructions_has_no_index() {
        assert_eq!(failing_insn("BTF is required\n"), None);
        assert_eq!(explanation("BTF is required\n"), "BTF is required");
    }
}
