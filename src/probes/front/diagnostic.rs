//! Diagnostics of the probe language: user mistakes as data, each with a code, a span in the
//! script and help, rendered with miette the way Nushell renders its own errors.

use std::fmt::Write;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use nubpf_ebpf::Span;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem in a script. Spans are byte offsets into the script's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// A stable code, e.g. `nubpf::unknown_field`.
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    /// The label on the span; empty for none.
    pub label: String,
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: &str, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            code: format!("nubpf::{code}"),
            severity: Severity::Error,
            message: message.into(),
            span,
            label: String::new(),
            help: Vec::new(),
        }
    }

    pub fn warning(code: &str, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message, span)
        }
    }

    /// A compiler bug: a separate code that says so.
    pub fn internal(what: impl std::fmt::Display, span: Span) -> Diagnostic {
        Diagnostic::error("internal", format!("internal compiler error: {what}"), span)
            .with_help("this is a bug in nubpf; please report it with the script that caused it")
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help.push(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Adapts a [`Diagnostic`] to miette for rendering.
#[derive(Debug)]
struct Report<'a> {
    d: &'a Diagnostic,
    src: NamedSource<String>,
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.d.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        Some(Box::new(&self.d.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        (!self.d.help.is_empty())
            .then(|| Box::new(self.d.help.join("\n")) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let len = self.src.inner().len();
        let start = (self.d.span.start as usize).min(len);
        let end = (self.d.span.end as usize).clamp(start, len);
        // A zero-width span gets no label in miette: widen it to one character.
        let width = if end > start {
            end - start
        } else {
            usize::from(start < len)
        };
        let label = (!self.d.label.is_empty()).then(|| self.d.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            label,
            SourceSpan::new(start.into(), width),
        ))))
    }
}

/// Renders diagnostics like Nushell does, without colours (for files, tests and pipes).
pub fn render(source_name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    render_with(
        source_name,
        source,
        diagnostics,
        GraphicalTheme::unicode_nocolor(),
    )
}

/// Renders with colours, for terminals.
pub fn render_color(source_name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    render_with(source_name, source, diagnostics, GraphicalTheme::unicode())
}

fn render_with(
    source_name: &str,
    source: &str,
    diagnostics: &[Diagnostic],
    theme: GraphicalTheme,
) -> String {
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for d in diagnostics {
        let report = Report {
            d,
            src: NamedSource::new(source_name, source.to_string()),
        };
        if handler.render_report(&mut out, &report).is_err() {
            let _ = writeln!(out, "{}: {}", d.code, d.message);
        }
    }
    out
}
