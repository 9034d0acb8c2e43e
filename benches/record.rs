//! Recording throughput: rows per second the SQLite recorder writes (three columns: pid,
//! comm, file), batched transactions in WAL mode. `cargo bench --bench record`.

use std::time::Instant;

use nubpf_tui::app::session::record::{Columns, Item, Recorder};
use nubpf_tui::probes::catalogue::Catalogue;
use nubpf_tui::probes::front;
use nubpf_tui::probes::runtime::decode::Value;

fn main() {
    let catalogue = Catalogue::system();
    let (script, d) = front::compile(
        r#"bpf_kprobe "do_sys_open" {|ctx| emit {pid: $ctx.pid, comm: $ctx.comm, file: $ctx.filename} }"#,
        &catalogue,
    );
    let script = script.unwrap_or_else(|| panic!("{d:?}"));
    let mut rates = Vec::new();
    for run in 0..5 {
        let path = std::env::temp_dir().join(format!(
            "nubpf-bench-record-{}-{run}.db",
            std::process::id()
        ));
        let rows = 1_000_000u64;
        let started = Instant::now();
        let recorder = Recorder::create(&path, &script, "bench").expect("create");
        for i in 0..rows {
            recorder.write(Item::Record {
                probe: 0,
                columns: Columns::Event(0),
                ts: i * 1000,
                values: vec![
                    Value::UInt(1000 + i % 5000),
                    Value::Str("bash".into()),
                    Value::Str(format!("/usr/lib/lib{i}.so")),
                ],
            });
        }
        let written = recorder.finish().expect("finish");
        let elapsed = started.elapsed();
        assert_eq!(written, rows);
        let rate = rows as f64 / elapsed.as_secs_f64();
        println!("{rows} rows in {elapsed:.2?}: {:.0} k rows/s", rate / 1e3);
        rates.push(rate);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(std::path::PathBuf::from(p));
        }
    }
    rates.sort_by(f64::total_cmp);
    println!("median {:.0} k rows/s", rates[2] / 1e3);
}
