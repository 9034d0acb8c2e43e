//! The application: commands built from the probe library (`run`, `list`, `info`), their
//! output, and the Nushell pipelines that consume probe records. Only this module spawns
//! threads and tasks.

pub mod aggregates;
pub mod list;
pub mod output;
pub mod pipeline;
pub mod privileges;
pub mod reach;
pub mod run;
pub mod session;
pub mod values;
pub mod workbench;

/// Panics on purpose at `point` when `NUBPF_TEST_PANIC` names it: the tests check what a
/// crash with probes attached leaves behind (nothing attached, the terminal restored).
pub fn test_panic(point: &str) {
    if std::env::var_os("NUBPF_TEST_PANIC").is_some_and(|v| v == point) {
        panic!("NUBPF_TEST_PANIC={point}: a deliberate panic for a test");
    }
}
