//! eBPF instruction encoding: registers, opcodes and the 8-byte wire form.
//!
//! Only the instruction forms codegen emits are modelled. Nothing here knows about labels,
//! maps or programs; `asm` builds on these constructors.

use std::fmt;

/// An eBPF register, `r0`..`r10`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(pub u8);

impl Reg {
    pub const R0: Reg = Reg(0);
    pub const R1: Reg = Reg(1);
    pub const R2: Reg = Reg(2);
    pub const R3: Reg = Reg(3);
    pub const R4: Reg = Reg(4);
    pub const R5: Reg = Reg(5);
    pub const R6: Reg = Reg(6);
    pub const R7: Reg = Reg(7);
    pub const R8: Reg = Reg(8);
    pub const R9: Reg = Reg(9);
    /// The read-only frame pointer.
    pub const FP: Reg = Reg(10);
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// Instruction classes (the low three bits of the opcode).
pub mod class {
    pub const LD: u8 = 0x00;
    pub const LDX: u8 = 0x01;
    pub const ST: u8 = 0x02;
    pub const STX: u8 = 0x03;
    pub const ALU: u8 = 0x04;
    pub const JMP: u8 = 0x05;
    pub const JMP32: u8 = 0x06;
    pub const ALU64: u8 = 0x07;
}

/// Memory access modes.
pub mod mode {
    pub const IMM: u8 = 0x00;
    pub const MEM: u8 = 0x60;
    pub const ATOMIC: u8 = 0xc0;
}

/// Operand source: immediate (`K`) or register (`X`).
pub mod src {
    pub const K: u8 = 0x00;
    pub const X: u8 = 0x08;
}

/// `ld_imm64` source values with special meaning to the loader.
pub mod pseudo {
    /// The immediate is a map file descriptor, patched in by the loader.
    pub const MAP_FD: u8 = 1;
}

/// The width of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    pub const fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }

    pub fn bytes(self) -> u32 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    /// The access size for a value of `bytes` bytes (1, 2, 4 or 8).
    pub fn from_bytes(bytes: u32) -> Option<Size> {
        match bytes {
            1 => Some(Size::B),
            2 => Some(Size::H),
            4 => Some(Size::W),
            8 => Some(Size::DW),
            _ => None,
        }
    }

    fn from_opcode(code: u8) -> Size {
        match code & 0x18 {
            0x00 => Size::W,
            0x08 => Size::H,
            0x10 => Size::B,
            _ => Size::DW,
        }
    }

    /// The C type name the kernel's disassembler prints.
    pub fn c_name(self) -> &'static str {
        match self {
            Size::B => "u8",
            Size::H => "u16",
            Size::W => "u32",
            Size::DW => "u64",
        }
    }
}

/// Arithmetic operations (the high four bits of an ALU opcode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    Add,
    Sub,
    Mul,
    Div,
    Or,
    And,
    Lsh,
    Rsh,
    Neg,
    Mod,
    Xor,
    Mov,
    Arsh,
}

impl AluOp {
    pub const fn bits(self) -> u8 {
        match self {
            AluOp::Add => 0x00,
            AluOp::Sub => 0x10,
            AluOp::Mul => 0x20,
            AluOp::Div => 0x30,
            AluOp::Or => 0x40,
            AluOp::And => 0x50,
            AluOp::Lsh => 0x60,
            AluOp::Rsh => 0x70,
            AluOp::Neg => 0x80,
            AluOp::Mod => 0x90,
            AluOp::Xor => 0xa0,
            AluOp::Mov => 0xb0,
            AluOp::Arsh => 0xc0,
        }
    }

    pub fn from_bits(bits: u8) -> Option<AluOp> {
        Some(match bits & 0xf0 {
            0x00 => AluOp::Add,
            0x10 => AluOp::Sub,
            0x20 => AluOp::Mul,
            0x30 => AluOp::Div,
            0x40 => AluOp::Or,
            0x50 => AluOp::And,
            0x60 => AluOp::Lsh,
            0x70 => AluOp::Rsh,
            0x80 => AluOp::Neg,
            0x90 => AluOp::Mod,
            0xa0 => AluOp::Xor,
            0xb0 => AluOp::Mov,
            0xc0 => AluOp::Arsh,
            _ => return None,
        })
    }

    /// The operator as the kernel's disassembler prints it (`+=`, `<<=`, ...).
    pub fn symbol(self) -> &'static str {
        match self {
            AluOp::Add => "+=",
            AluOp::Sub => "-=",
            AluOp::Mul => "*=",
            AluOp::Div => "/=",
            AluOp::Or => "|=",
            AluOp::And => "&=",
            AluOp::Lsh => "<<=",
            AluOp::Rsh => ">>=",
            AluOp::Neg => "neg",
            AluOp::Mod => "%=",
            AluOp::Xor => "^=",
            AluOp::Mov => "=",
            AluOp::Arsh => "s>>=",
        }
    }
}

/// Conditional jump operations (the high four bits of a JMP opcode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JmpOp {
    Eq,
    Gt,
    Ge,
    Set,
    Ne,
    Sgt,
    Sge,
    Lt,
    Le,
    Slt,
    Sle,
}

impl JmpOp {
    pub const fn bits(self) -> u8 {
        match self {
            JmpOp::Eq => 0x10,
            JmpOp::Gt => 0x20,
            JmpOp::Ge => 0x30,
            JmpOp::Set => 0x40,
            JmpOp::Ne => 0x50,
            JmpOp::Sgt => 0x60,
            JmpOp::Sge => 0x70,
            JmpOp::Lt => 0xa0,
            JmpOp::Le => 0xb0,
            JmpOp::Slt => 0xc0,
            JmpOp::Sle => 0xd0,
        }
    }

    pub fn from_bits(bits: u8) -> Option<JmpOp> {
        Some(match bits & 0xf0 {
            0x10 => JmpOp::Eq,
            0x20 => JmpOp::Gt,
            0x30 => JmpOp::Ge,
            0x40 => JmpOp::Set,
            0x50 => JmpOp::Ne,
            0x60 => JmpOp::Sgt,
            0x70 => JmpOp::Sge,
            0xa0 => JmpOp::Lt,
            0xb0 => JmpOp::Le,
            0xc0 => JmpOp::Slt,
            0xd0 => JmpOp::Sle,
            _ => return None,
        })
    }

    /// The condition that holds exactly when `self` does not.
    pub fn negate(self) -> JmpOp {
        match self {
            JmpOp::Eq => JmpOp::Ne,
            JmpOp::Ne => JmpOp::Eq,
            JmpOp::Gt => JmpOp::Le,
            JmpOp::Le => JmpOp::Gt,
            JmpOp::Ge => JmpOp::Lt,
            JmpOp::Lt => JmpOp::Ge,
            JmpOp::Sgt => JmpOp::Sle,
            JmpOp::Sle => JmpOp::Sgt,
            JmpOp::Sge => JmpOp::Slt,
            JmpOp::Slt => JmpOp::Sge,
            // `jset` has no negated form; callers branch around it instead.
            JmpOp::Set => JmpOp::Set,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            JmpOp::Eq => "==",
            JmpOp::Gt => ">",
            JmpOp::Ge => ">=",
            JmpOp::Set => "&",
            JmpOp::Ne => "!=",
            JmpOp::Sgt => "s>",
            JmpOp::Sge => "s>=",
            JmpOp::Lt => "<",
            JmpOp::Le => "<=",
            JmpOp::Slt => "s<",
            JmpOp::Sle => "s<=",
        }
    }
}

pub const OP_JA: u8 = 0x00;
pub const OP_CALL: u8 = 0x80;
pub const OP_EXIT: u8 = 0x90;
/// The atomic operation code (in `imm`) for a plain fetch-less add.
pub const ATOMIC_ADD: i32 = 0x00;

/// One 8-byte eBPF instruction. `ld_imm64` takes two of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub const fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst: dst.0,
            src: src.0,
            off,
            imm,
        }
    }

    /// The little-endian wire form.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    pub fn decode(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    pub fn size(&self) -> Size {
        Size::from_opcode(self.code)
    }

    pub fn dst(&self) -> Reg {
        Reg(self.dst)
    }

    pub fn src_reg(&self) -> Reg {
        Reg(self.src)
    }

    /// True for the first half of a two-slot `ld_imm64`.
    pub fn is_ld_imm64(&self) -> bool {
        self.code == class::LD | mode::IMM | Size::DW.bits()
    }

    /// True for jumps that carry a pc-relative offset (everything but call and exit).
    pub fn is_branch(&self) -> bool {
        let class = self.class();
        if class != class::JMP && class != class::JMP32 {
            return false;
        }
        let op = self.code & 0xf0;
        op != OP_CALL && op != OP_EXIT
    }

    // ---- constructors -------------------------------------------------------------------

    pub const fn alu64_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::new(class::ALU64 | src::K | op.bits(), dst, Reg(0), 0, imm)
    }

    pub const fn alu64_reg(op: AluOp, dst: Reg, src_reg: Reg) -> Insn {
        Insn::new(class::ALU64 | src::X | op.bits(), dst, src_reg, 0, 0)
    }

    pub const fn alu32_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::new(class::ALU | src::K | op.bits(), dst, Reg(0), 0, imm)
    }

    pub const fn alu32_reg(op: AluOp, dst: Reg, src_reg: Reg) -> Insn {
        Insn::new(class::ALU | src::X | op.bits(), dst, src_reg, 0, 0)
    }

    pub const fn mov64_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu64_imm(AluOp::Mov, dst, imm)
    }

    pub const fn mov64_reg(dst: Reg, src_reg: Reg) -> Insn {
        Insn::alu64_reg(AluOp::Mov, dst, src_reg)
    }

    pub const fn neg64(dst: Reg) -> Insn {
        Insn::new(class::ALU64 | AluOp::Neg.bits(), dst, Reg(0), 0, 0)
    }

    /// `dst = *(size *)(src + off)`
    pub const fn ldx(size: Size, dst: Reg, src_reg: Reg, off: i16) -> Insn {
        Insn::new(class::LDX | mode::MEM | size.bits(), dst, src_reg, off, 0)
    }

    /// `*(size *)(dst + off) = src`
    pub const fn stx(size: Size, dst: Reg, off: i16, src_reg: Reg) -> Insn {
        Insn::new(class::STX | mode::MEM | size.bits(), dst, src_reg, off, 0)
    }

    /// `*(size *)(dst + off) = imm`
    pub const fn st_imm(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
        Insn::new(class::ST | mode::MEM | size.bits(), dst, Reg(0), off, imm)
    }

    /// `lock *(size *)(dst + off) += src` (only W and DW exist).
    pub const fn atomic_add(size: Size, dst: Reg, off: i16, src_reg: Reg) -> Insn {
        Insn::new(
            class::STX | mode::ATOMIC | size.bits(),
            dst,
            src_reg,
            off,
            ATOMIC_ADD,
        )
    }

    pub const fn jmp_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::new(class::JMP | src::K | op.bits(), dst, Reg(0), off, imm)
    }

    pub const fn jmp_reg(op: JmpOp, dst: Reg, src_reg: Reg, off: i16) -> Insn {
        Insn::new(class::JMP | src::X | op.bits(), dst, src_reg, off, 0)
    }

    pub const fn jmp32_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::new(class::JMP32 | src::K | op.bits(), dst, Reg(0), off, imm)
    }

    pub const fn jmp32_reg(op: JmpOp, dst: Reg, src_reg: Reg, off: i16) -> Insn {
        Insn::new(class::JMP32 | src::X | op.bits(), dst, src_reg, off, 0)
    }

    pub const fn ja(off: i16) -> Insn {
        Insn::new(class::JMP | OP_JA, Reg(0), Reg(0), off, 0)
    }

    pub const fn call(helper: i32) -> Insn {
        Insn::new(class::JMP | OP_CALL, Reg(0), Reg(0), 0, helper)
    }

    pub const fn exit() -> Insn {
        Insn::new(class::JMP | OP_EXIT, Reg(0), Reg(0), 0, 0)
    }

    /// `dst = imm64`, as its two instruction slots.
    pub const fn ld_imm64(dst: Reg, imm: u64) -> [Insn; 2] {
        [
            Insn::new(
                class::LD | mode::IMM | Size::DW.bits(),
                dst,
                Reg(0),
                0,
                imm as u32 as i32,
            ),
            Insn::new(0, Reg(0), Reg(0), 0, (imm >> 32) as u32 as i32),
        ]
    }

    /// `dst = map` with the map's fd filled in later by the loader via a relocation.
    pub const fn ld_map(dst: Reg) -> [Insn; 2] {
        [
            Insn::new(
                class::LD | mode::IMM | Size::DW.bits(),
                dst,
                Reg(pseudo::MAP_FD),
                0,
                0,
            ),
            Insn::new(0, Reg(0), Reg(0), 0, 0),
        ]
    }
}

/// Serialises instructions into the byte form an ELF section holds.
pub fn encode_all(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.encode()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(insn: Insn, expect: [u8; 8]) {
        assert_eq!(insn.encode(), expect, "{insn:?}");
        assert_eq!(Insn::decode(expect), insn);
    }

    // Expected bytes are what clang -target bpf emits for the same instruction.
    #[test]
    fn encodes_every_form() {
        check(
            Insn::mov64_reg(Reg::R6, Reg::R1),
            [0xbf, 0x16, 0, 0, 0, 0, 0, 0],
        );
        check(Insn::mov64_imm(Reg::R0, 0), [0xb7, 0x00, 0, 0, 0, 0, 0, 0]);
        check(
            Insn::alu64_imm(AluOp::Add, Reg::R2, -8),
            [0x07, 0x02, 0, 0, 0xf8, 0xff, 0xff, 0xff],
        );
        check(
            Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32),
            [0x77, 0x00, 0, 0, 0x20, 0, 0, 0],
        );
        check(
            Insn::alu64_reg(AluOp::Sub, Reg::R1, Reg::R2),
            [0x1f, 0x21, 0, 0, 0, 0, 0, 0],
        );
        check(
            Insn::alu32_imm(AluOp::And, Reg::R3, 0xffff),
            [0x54, 0x03, 0, 0, 0xff, 0xff, 0, 0],
        );
        check(
            Insn::alu32_reg(AluOp::Mov, Reg::R1, Reg::R2),
            [0xbc, 0x21, 0, 0, 0, 0, 0, 0],
        );
        check(Insn::neg64(Reg::R4), [0x87, 0x04, 0, 0, 0, 0, 0, 0]);
        check(
            Insn::alu64_imm(AluOp::Arsh, Reg::R1, 56),
            [0xc7, 0x01, 0, 0, 56, 0, 0, 0],
        );
        check(
            Insn::alu64_reg(AluOp::Mod, Reg::R1, Reg::R2),
            [0x9f, 0x21, 0, 0, 0, 0, 0, 0],
        );
        check(
            Insn::ldx(Size::W, Reg::R1, Reg::R6, 8),
            [0x61, 0x61, 8, 0, 0, 0, 0, 0],
        );
        check(
            Insn::ldx(Size::DW, Reg::R1, Reg::R6, 16),
            [0x79, 0x61, 16, 0, 0, 0, 0, 0],
        );
        check(
            Insn::ldx(Size::H, Reg::R1, Reg::R6, 2),
            [0x69, 0x61, 2, 0, 0, 0, 0, 0],
        );
        check(
            Insn::ldx(Size::B, Reg::R1, Reg::R6, 1),
            [0x71, 0x61, 1, 0, 0, 0, 0, 0],
        );
        check(
            Insn::stx(Size::W, Reg::FP, -4, Reg::R0),
            [0x63, 0x0a, 0xfc, 0xff, 0, 0, 0, 0],
        );
        check(
            Insn::stx(Size::DW, Reg::FP, -16, Reg::R1),
            [0x7b, 0x1a, 0xf0, 0xff, 0, 0, 0, 0],
        );
        check(
            Insn::st_imm(Size::DW, Reg::FP, -8, 1),
            [0x7a, 0x0a, 0xf8, 0xff, 1, 0, 0, 0],
        );
        check(
            Insn::st_imm(Size::B, Reg::FP, -1, 0),
            [0x72, 0x0a, 0xff, 0xff, 0, 0, 0, 0],
        );
        check(
            Insn::atomic_add(Size::DW, Reg::R0, 0, Reg::R1),
            [0xdb, 0x10, 0, 0, 0, 0, 0, 0],
        );
        check(
            Insn::atomic_add(Size::W, Reg::R0, 4, Reg::R1),
            [0xc3, 0x10, 4, 0, 0, 0, 0, 0],
        );
        check(
            Insn::jmp_imm(JmpOp::Eq, Reg::R0, 0, 5),
            [0x15, 0x00, 5, 0, 0, 0, 0, 0],
        );
        check(
            Insn::jmp_reg(JmpOp::Sgt, Reg::R1, Reg::R2, -3),
            [0x6d, 0x21, 0xfd, 0xff, 0, 0, 0, 0],
        );
        check(
            Insn::jmp32_imm(JmpOp::Ne, Reg::R1, 7, 1),
            [0x56, 0x01, 1, 0, 7, 0, 0, 0],
        );
        check(
            Insn::jmp32_reg(JmpOp::Lt, Reg::R1, Reg::R2, 2),
            [0xae, 0x21, 2, 0, 0, 0, 0, 0],
        );
        check(Insn::ja(3), [0x05, 0x00, 3, 0, 0, 0, 0, 0]);
        check(Insn::call(14), [0x85, 0x00, 0, 0, 14, 0, 0, 0]);
        check(Insn::exit(), [0x95, 0x00, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn encodes_ld_imm64_in_two_slots() {
        let [lo, hi] = Insn::ld_imm64(Reg::R1, 0x1122_3344_5566_7788);
        assert_eq!(lo.encode(), [0x18, 0x01, 0, 0, 0x88, 0x77, 0x66, 0x55]);
        assert_eq!(hi.encode(), [0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11]);
        let [lo, hi] = Insn::ld_map(Reg::R1);
        assert_eq!(lo.encode(), [0x18, 0x11, 0, 0, 0, 0, 0, 0]);
        assert_eq!(hi.encode(), [0; 8]);
        assert!(lo.is_ld_imm64());
    }

    #[test]
    fn negated_conditions_round_trip() {
        for op in [
            JmpOp::Eq,
            JmpOp::Ne,
            JmpOp::Gt,
            JmpOp::Ge,
            JmpOp::Lt,
            JmpOp::Le,
            JmpOp::Sgt,
            JmpOp::Sge,
            JmpOp::Slt,
            JmpOp::Sle,
        ] {
            assert_eq!(op.negate().negate(), op);
            assert_eq!(JmpOp::from_bits(op.bits()), Some(op));
        }
    }
}
