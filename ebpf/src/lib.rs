//! nubpf-ebpf: the typed probe IR → eBPF instructions → ELF object bytes that aya loads.
//!
//! Pure: no IO, no nushell, no aya. The same input always gives byte-identical output.
//! Pipeline: [`ir::Module`] → [`codegen::compile`] (via [`asm::Asm`] and [`insn`]) →
//! [`elf::write`], with [`layout`] describing every record and map value for the decoder,
//! and [`disasm`] printing code the way the kernel verifier does.

pub mod asm;
pub mod codegen;
pub mod disasm;
pub mod elf;
pub mod helpers;
pub mod insn;
pub mod ir;
pub mod layout;
pub mod maps;
pub mod pretty;
pub mod program;
pub mod span;

pub use codegen::{CodegenError, CodegenErrorKind, Compiled, CompiledProgram, compile};
pub use span::Span;
