//! User-space pipelines: the Nushell part of a probe's pipeline (`| where ... | group-by ...`),
//! evaluated by Nushell itself over the stream of records the probe emits.
//!
//! The pipeline is parsed from the script with everything else blanked out, so its spans are
//! the script's own and Nushell's errors point at the user's text.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use nu_protocol::ast::Block;
use nu_protocol::debugger::WithoutDebug;
use nu_protocol::engine::{EngineState, Stack, StateWorkingSet};
use nu_protocol::{ListStream, PipelineData, ShellError, Signals, Span as NuSpan, Value};
use nubpf_ebpf::Span;

use crate::probes::front::engine::engine_state;
use crate::probes::front::{Diagnostic, ScriptProbe};

/// A parsed user-space pipeline, ready to run.
pub struct Pipeline {
    engine: EngineState,
    block: Arc<Block>,
    /// Global offset of the script's first byte in `engine`'s span space.
    base: usize,
    /// Interrupts the evaluation (between items).
    interrupt: Arc<AtomicBool>,
    text: String,
}

/// Copies `source`, blanking every byte outside `span` (newlines kept) so a parse of the copy
/// sees only the pipeline, at its original offsets.
fn isolate(source: &str, span: Span) -> String {
    source
        .char_indices()
        .map(|(i, c)| {
            if (span.start as usize..span.end as usize).contains(&i) || c == '\n' {
                c
            } else {
                ' '
            }
        })
        .collect()
}

impl Pipeline {
    /// Parses probe `probe`'s pipeline from `source`; `None` when the probe has none.
    pub fn prepare(source: &str, probe: &ScriptProbe) -> Option<Result<Pipeline, Diagnostic>> {
        let (text, span) = probe.pipeline.clone()?;
        Some(Self::from_text(source, &text, span))
    }

    /// Parses the pipeline `text` found at `span` of `source` (a replay knows both from the
    /// recording).
    pub fn from_text(source: &str, text: &str, span: Span) -> Result<Pipeline, Diagnostic> {
        let mut engine = engine_state().clone();
        let interrupt = Arc::new(AtomicBool::new(false));
        engine.set_signals(Signals::new(interrupt.clone()));
        let cwd = std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "/".into());
        engine.add_env_var("PWD".into(), Value::string(cwd, NuSpan::unknown()));
        let isolated = isolate(source, span);
        let (block, base, delta) = {
            let mut ws = StateWorkingSet::new(&engine);
            let base = ws.next_span_start();
            let block = nu_parser::parse(&mut ws, Some("pipeline"), isolated.as_bytes(), false);
            if let Some(err) = ws.parse_errors.first() {
                return Err(shell_like(err, base, source.len(), "parse"));
            }
            if let Some(err) = ws.compile_errors.first() {
                return Err(shell_like(err, base, source.len(), "parse"));
            }
            (block, base, ws.render())
        };
        engine
            .merge_delta(delta)
            .map_err(|e| Diagnostic::internal(format!("merging the pipeline: {e}"), span))?;
        Ok(Pipeline {
            engine,
            block,
            base,
            interrupt,
            text: text.to_string(),
        })
    }

    /// A flag that interrupts the evaluation when set.
    pub fn interrupt(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    /// Runs the pipeline over `input`, handing every output value to `out`. Returns when
    /// the pipeline ends: its input ended, or it stopped reading (`first 3`).
    pub fn run(
        &self,
        input: impl Iterator<Item = Value> + Send + 'static,
        script_len: usize,
        mut out: impl FnMut(Value),
    ) -> Result<(), Diagnostic> {
        let mut stack = Stack::new();
        let stream = ListStream::new(input, NuSpan::unknown(), self.engine.signals().clone());
        let data = nu_engine::eval_block::<WithoutDebug>(
            &self.engine,
            &mut stack,
            &self.block,
            PipelineData::list_stream(stream, None),
        )
        .map_err(|e| self.error(&e, script_len))?;
        for value in data.body {
            if let Value::Error { error, .. } = &value {
                return Err(self.error(error, script_len));
            }
            out(value);
        }
        Ok(())
    }

    fn error(&self, e: &ShellError, script_len: usize) -> Diagnostic {
        let mut d = shell_like(e, self.base, script_len, "pipeline");
        if matches!(e, ShellError::CantFindColumn { .. })
            && self.text.contains("group-by")
            && !self.text.contains("--to-table")
        {
            d = d.with_help(
                "in Nushell 0.115 `group-by` returns a record keyed by group: use \
                 `group-by <column> --to-table`, whose rows have the column and `items` \
                 (e.g. `each {|g| {pid: $g.pid, count: ($g.items | length)}}`)",
            );
        }
        d
    }
}

/// A Nushell error (parse or shell) as one of our diagnostics, spans mapped to the script.
fn shell_like(e: &dyn miette::Diagnostic, base: usize, len: usize, code: &str) -> Diagnostic {
    let label = e.labels().and_then(|mut l| l.next());
    let span = label
        .as_ref()
        .map(|l| {
            let start = l.offset().saturating_sub(base).min(len) as u32;
            let end = (l.offset() + l.len()).saturating_sub(base).min(len) as u32;
            Span::new(start, end.max(start))
        })
        .unwrap_or_default();
    let mut d = Diagnostic::error(code, e.to_string(), span);
    if let Some(text) = label.and_then(|l| l.label().map(str::to_string)) {
        d = d.with_label(text);
    }
    if let Some(help) = e.help() {
        d = d.with_help(help.to_string());
    }
    d
}

/// Feeds a pipeline from a channel: ends when every sender is gone or `stop` is set, and
/// never blocks long, so interrupts are seen between items.
pub struct ChannelInput {
    pub rx: Receiver<Value>,
    pub stop: Arc<AtomicBool>,
}

impl Iterator for ChannelInput {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        loop {
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(v) => return Some(v),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_keeps_offsets_and_lines() {
        let src = "abc {x}\n| where y\nz";
        let out = isolate(src, Span::new(10, 17));
        assert_eq!(out.len(), src.len());
        assert_eq!(&out[10..17], "where y");
        assert_eq!(out.matches('\n').count(), 2);
        assert!(out[..8].trim().is_empty());
    }
}

#[cfg(test)]
mod eval_tests {
    use super::*;
    use crate::probes::catalogue::Catalogue;
    use crate::probes::front;

    #[test]
    fn where_filters_the_first_record_too() {
        let src = r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit {file: $e.filename} } | where file starts-with "/tmp""#;
        let (script, d) = front::compile(src, &Catalogue::system());
        let script = script.unwrap_or_else(|| panic!("{d:?}"));
        let p = Pipeline::prepare(src, &script.probes[0]).unwrap().unwrap();
        let rec = |f: &str| {
            let mut r = nu_protocol::Record::new();
            r.push("file", Value::string(f, NuSpan::unknown()));
            Value::record(r, NuSpan::unknown())
        };
        let input = vec![rec("/sys/x"), rec("/tmp/a"), rec("/sys/y"), rec("/tmp/b")];
        let mut out = Vec::new();
        p.run(input.into_iter(), src.len(), |v| out.push(v))
            .unwrap();
        let files: Vec<String> = out
            .iter()
            .map(|v| {
                v.get_data_by_key("file")
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(files, ["/tmp/a", "/tmp/b"]);
    }
}
