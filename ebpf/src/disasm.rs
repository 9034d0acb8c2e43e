//! A disassembler printing the kernel verifier's style (`6: (85) call bpf_map_lookup_elem#1`),
//! so golden files and `check --dump asm` read like the verifier log users will meet.

use std::fmt::Write;

use crate::helpers::Helper;
use crate::insn::{AluOp, Insn, JmpOp, OP_CALL, OP_EXIT, OP_JA, class, mode, pseudo};

/// Disassembles `insns`, one instruction per line. `map_name(i)` names the map an `ld_imm64`
/// at index `i` refers to, when it is a map reference.
pub fn disassemble(insns: &[Insn], map_name: &dyn Fn(usize) -> Option<String>) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        let text = if insn.is_ld_imm64() {
            let hi = insns.get(i + 1).map_or(0, |h| h.imm as u32 as u64);
            let value = (hi << 32) | insn.imm as u32 as u64;
            let rhs = match map_name(i) {
                Some(name) => format!("map[{name}]"),
                None if insn.src == pseudo::MAP_FD => format!("map[fd:{}]", insn.imm),
                None => format!("{value:#x}"),
            };
            format!("r{} = {rhs}", insn.dst)
        } else {
            format_insn(&insn)
        };
        let _ = writeln!(out, "{i}: ({:02x}) {text}", insn.code);
        i += if insn.is_ld_imm64() { 2 } else { 1 };
    }
    out
}

/// One instruction without index and opcode, e.g. `r1 += -8`.
pub fn format_insn(insn: &Insn) -> String {
    let code = insn.code;
    match insn.class() {
        class::ALU | class::ALU64 => {
            let r = if insn.class() == class::ALU64 {
                'r'
            } else {
                'w'
            };
            let Some(op) = AluOp::from_bits(code) else {
                return format!("<unknown alu {code:#04x}>");
            };
            if op == AluOp::Neg {
                return format!("{r}{0} = -{r}{0}", insn.dst);
            }
            if code & 0x08 != 0 {
                format!("{r}{} {} {r}{}", insn.dst, op.symbol(), insn.src)
            } else {
                format!("{r}{} {} {}", insn.dst, op.symbol(), insn.imm)
            }
        }
        class::LDX => format!(
            "r{} = *({} *)(r{} {:+})",
            insn.dst,
            insn.size().c_name(),
            insn.src,
            insn.off
        ),
        class::ST => format!(
            "*({} *)(r{} {:+}) = {}",
            insn.size().c_name(),
            insn.dst,
            insn.off,
            insn.imm
        ),
        class::STX if code & 0xe0 == mode::ATOMIC => format!(
            "lock *({} *)(r{} {:+}) += r{}",
            insn.size().c_name(),
            insn.dst,
            insn.off,
            insn.src
        ),
        class::STX => format!(
            "*({} *)(r{} {:+}) = r{}",
            insn.size().c_name(),
            insn.dst,
            insn.off,
            insn.src
        ),
        class::JMP | class::JMP32 => {
            let r = if insn.class() == class::JMP { 'r' } else { 'w' };
            match code & 0xf0 {
                OP_CALL => {
                    let name = Helper::from_id(insn.imm).map_or("unknown", |h| h.name());
                    format!("call {name}#{}", insn.imm)
                }
                OP_EXIT => "exit".to_string(),
                OP_JA => format!("goto pc{:+}", insn.off),
                bits => {
                    let Some(op) = JmpOp::from_bits(bits) else {
                        return format!("<unknown jmp {code:#04x}>");
                    };
                    if code & 0x08 != 0 {
                        format!(
                            "if {r}{} {} {r}{} goto pc{:+}",
                            insn.dst,
                            op.symbol(),
                            insn.src,
                            insn.off
                        )
                    } else {
                        format!(
                            "if {r}{} {} {:#x} goto pc{:+}",
                            insn.dst,
                            op.symbol(),
                            insn.imm,
                            insn.off
                        )
                    }
                }
            }
        }
        _ => format!("<unknown {code:#04x}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::{Reg, Size};

    #[test]
    fn prints_like_the_verifier() {
        let mut insns = vec![
            Insn::mov64_reg(Reg::R6, Reg::R1),
            Insn::call(Helper::GetCurrentPidTgid.id()),
            Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32),
            Insn::stx(Size::W, Reg::FP, -4, Reg::R0),
            Insn::mov64_reg(Reg::R2, Reg::FP),
            Insn::alu64_imm(AluOp::Add, Reg::R2, -4),
        ];
        insns.extend(Insn::ld_map(Reg::R1));
        insns.extend([
            Insn::call(Helper::MapLookupElem.id()),
            Insn::jmp_imm(JmpOp::Eq, Reg::R0, 0, 2),
            Insn::mov64_imm(Reg::R1, 1),
            Insn::atomic_add(Size::DW, Reg::R0, 0, Reg::R1),
            Insn::st_imm(Size::DW, Reg::FP, -16, 1),
            Insn::ldx(Size::W, Reg::R1, Reg::R6, 8),
            Insn::jmp_reg(JmpOp::Sgt, Reg::R1, Reg::R2, -3),
            Insn::jmp32_imm(JmpOp::Ne, Reg::R1, 255, 1),
            Insn::alu32_reg(AluOp::Mov, Reg::R1, Reg::R2),
            Insn::neg64(Reg::R3),
            Insn::ja(1),
            Insn::alu64_imm(AluOp::Arsh, Reg::R1, 56),
            Insn::exit(),
        ]);
        let names = |i: usize| (i == 6).then(|| "counts".to_string());
        let expect = "\
0: (bf) r6 = r1
1: (85) call bpf_get_current_pid_tgid#14
2: (77) r0 >>= 32
3: (63) *(u32 *)(r10 -4) = r0
4: (bf) r2 = r10
5: (07) r2 += -4
6: (18) r1 = map[counts]
8: (85) call bpf_map_lookup_elem#1
9: (15) if r0 == 0x0 goto pc+2
10: (b7) r1 = 1
11: (db) lock *(u64 *)(r0 +0) += r1
12: (7a) *(u64 *)(r10 -16) = 1
13: (61) r1 = *(u32 *)(r6 +8)
14: (6d) if r1 s> r2 goto pc-3
15: (56) if w1 != 0xff goto pc+1
16: (bc) w1 = w2
17: (87) r3 = -r3
18: (05) goto pc+1
19: (c7) r1 s>>= 56
20: (95) exit
";
        assert_eq!(disassemble(&insns, &names), expect);
    }

    #[test]
    fn plain_ld_imm64_prints_its_value() {
        let insns = Insn::ld_imm64(Reg::R2, 0x1_0000_0000);
        assert_eq!(disassemble(&insns, &|_| None), "0: (18) r2 = 0x100000000\n");
    }
}
