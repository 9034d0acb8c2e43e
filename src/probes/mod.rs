//! The probe language and its life in the kernel. For now: the runtime that loads, attaches
//! and reads compiled modules; the front end and the catalogue join it here.

pub mod runtime;
