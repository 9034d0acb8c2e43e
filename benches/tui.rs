//! Workbench benchmarks: frame render time and memory with 1 M buffered rows, and the
//! latency from a keystroke to its diagnostic on screen (background compile included).
//! Run with `cargo bench --bench tui` (root for the tracepoint catalogue).

#[path = "support/tui.rs"]
mod tui;

use std::sync::Arc;

use nubpf_tui::probes::catalogue::Catalogue;
use tui::{Typing, quantile};

fn main() {
    let catalogue = Arc::new(Catalogue::system());
    let m = tui::million_rows(catalogue.clone());
    println!(
        "1 000 000 rows buffered: ingest {:.2?} ({:.0} k rows/s), resident memory +{:.0} MiB ({:.0} bytes/row), {:.0} MiB in all",
        m.ingest,
        1e3 / m.ingest.as_secs_f64(),
        m.added_mib,
        m.added_mib * 1048576.0 / 1e6,
        m.resident_mib
    );
    println!(
        "frame render (160x48, following the newest rows): median {:?}",
        quantile(&m.frames, 0.5)
    );
    for (name, typing) in [
        ("typing a probe from scratch", Typing::TypicalEdit),
        ("breaking and fixing a field", Typing::BreakAndFix),
    ] {
        let times = tui::keystrokes(catalogue.clone(), typing);
        println!(
            "keystroke -> diagnostic drawn, {name} ({} keys): median {:?}, p90 {:?}, max {:?}",
            times.len(),
            quantile(&times, 0.5),
            quantile(&times, 0.9),
            quantile(&times, 1.0)
        );
    }
}
