//! The probe language and its life in the kernel: the front end (Nushell closures → probe
//! IR, diagnostics), the catalogue (tracefs formats, vmlinux BTF, ELF symbols) and the
//! runtime (the only code that calls aya).

pub mod catalogue;
pub mod front;
pub mod runtime;
