//! nubpf-tui as a library: the probe runtime (and, as they land, the front end, the app
//! state and the views), shared by the binary, the integration tests and the benchmarks.

pub mod app;
pub mod editor;
pub mod probes;
pub mod views;
