//! Completion candidates for the editor: probe and body commands, probe targets from the
//! catalogue (tracepoints, kernel functions, a binary's symbols), and the `$ctx.` fields of
//! the probe around the cursor, struct members included.
//!
//! Works on half-typed text: targets are found textually, the enclosing probe through the
//! parser, which recovers from the errors of unfinished input.

use std::ops::Range;
use std::path::Path;

use nu_protocol::ast::{Argument, Expr as NuExpr};
use nu_protocol::engine::StateWorkingSet;

use super::commands::{BodyCommand, Decl, ProbeKind};
use super::lower::field_names;
use super::target::{self, Fields, TargetArgs};
use crate::probes::catalogue::Catalogue;
use crate::probes::catalogue::btf::Resolved;
use nubpf_ebpf::Span;

/// One candidate: `value` replaces the text at `replace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub value: String,
    pub description: String,
    pub replace: Range<usize>,
}

const LIMIT: usize = 200;

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '/' | '.')
}

/// Candidates at byte offset `cursor` of `text`.
pub fn complete(text: &str, cursor: usize, catalogue: &Catalogue) -> Vec<Completion> {
    let cursor = cursor.min(text.len());
    if !text.is_char_boundary(cursor) {
        return Vec::new();
    }
    let before = &text[..cursor];
    if let Some(found) = complete_target(before, cursor, catalogue) {
        return found;
    }
    if let Some(found) = complete_field(text, cursor, catalogue) {
        return found;
    }
    complete_command(before, cursor)
}

fn candidates<'a>(
    names: impl IntoIterator<Item = (&'a str, String)>,
    prefix: &str,
    replace: Range<usize>,
) -> Vec<Completion> {
    let mut out: Vec<Completion> = names
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, d)| Completion {
            value: n.to_string(),
            description: d,
            replace: replace.clone(),
        })
        .collect();
    out.sort_by(|a, b| {
        a.value
            .len()
            .cmp(&b.value.len())
            .then(a.value.cmp(&b.value))
    });
    out.dedup_by(|a, b| a.value == b.value);
    out.truncate(LIMIT);
    out
}

/// Inside the quoted target of a probe command.
fn complete_target(before: &str, cursor: usize, catalogue: &Catalogue) -> Option<Vec<Completion>> {
    let quote = before.rfind('"')?;
    // An odd number of quotes on the line before the cursor: we are inside a string.
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    if line.matches('"').count().is_multiple_of(2) {
        return None;
    }
    let prefix = &before[quote + 1..];
    let head = before[..quote].trim_end();
    let replace = quote + 1..cursor;
    let command_kind = |s: &str| -> Option<ProbeKind> {
        let word = s.rsplit(|c: char| c.is_whitespace() || c == '|').next()?;
        let word = word.strip_prefix("bpf_")?;
        ProbeKind::ALL.into_iter().find(|k| k.word() == word)
    };
    // `bpf kprobe "` spells the kind after a space.
    let kind = command_kind(head).or_else(|| {
        let (rest, word) = head.rsplit_once(char::is_whitespace)?;
        rest.trim_end()
            .ends_with("bpf")
            .then(|| ProbeKind::ALL.into_iter().find(|k| k.word() == word))
            .flatten()
    });
    match kind {
        Some(ProbeKind::Tracepoint) => {
            let names = catalogue.tracepoint_names().ok()?;
            Some(candidates(
                names.iter().map(|n| (n.as_str(), String::new())),
                prefix,
                replace,
            ))
        }
        Some(ProbeKind::RawTracepoint) => {
            let btf = catalogue.btf().ok()?;
            let mut names: Vec<&str> = btf.raw_tracepoint_names().collect();
            names.sort_unstable();
            Some(candidates(
                names.into_iter().map(|n| (n, String::new())),
                prefix,
                replace,
            ))
        }
        Some(ProbeKind::Kprobe | ProbeKind::Kretprobe | ProbeKind::Fentry | ProbeKind::Fexit) => {
            let btf = catalogue.btf().ok()?;
            let names: Vec<&str> = btf
                .function_names()
                .filter(|n| n.starts_with(prefix))
                .collect();
            Some(candidates(
                names.into_iter().map(|n| (n, String::new())),
                prefix,
                replace,
            ))
        }
        _ => {
            // The symbol of a uprobe: `bpf_uprobe "/bin/bash" "`.
            let (before_binary, binary) = head.strip_suffix('"')?.rsplit_once('"')?;
            let kind = command_kind(before_binary.trim_end())?;
            if !matches!(kind, ProbeKind::Uprobe | ProbeKind::Uretprobe) {
                return None;
            }
            let symbols = catalogue.elf_symbols(Path::new(binary)).ok()?;
            Some(candidates(
                symbols
                    .functions
                    .iter()
                    .map(|n| (n.as_str(), String::new())),
                prefix,
                replace,
            ))
        }
    }
}

/// After `$<param>.` inside a probe closure.
fn complete_field(text: &str, cursor: usize, catalogue: &Catalogue) -> Option<Vec<Completion>> {
    let before = &text[..cursor];
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c) || *c == '$')
        .last()
        .map_or(cursor, |(i, _)| i);
    let path = &before[start..];
    let path = path.strip_prefix('$')?;
    let (var, members) = path.split_once('.')?;
    let mut members: Vec<&str> = members.split('.').collect();
    let prefix = members.pop().unwrap_or("");
    let replace = cursor - prefix.len()..cursor;

    let (kind, strings, param) = enclosing_probe(text, cursor)?;
    if param.as_deref() != Some(var) {
        return None;
    }
    let target = target::resolve(&TargetArgs {
        kind,
        strings: strings.into_iter().map(|s| (s, Span::default())).collect(),
        period_ns: Some(1_000_000_000),
        hz: None,
        head: Span::default(),
        catalogue,
    })
    .ok()?;
    if members.is_empty() {
        let names = field_names(&target.fields);
        let described: Vec<(String, String)> = names
            .into_iter()
            .map(|n| {
                let d = describe_field(&target.fields, &n);
                (n, d)
            })
            .collect();
        return Some(candidates(
            described.iter().map(|(n, d)| (n.as_str(), d.clone())),
            prefix,
            replace,
        ));
    }
    // Struct members through BTF.
    let Fields::Btf { btf, params, .. } = &target.fields else {
        return Some(Vec::new());
    };
    let first = members[0];
    let mut ty = params.iter().find(|p| p.name == first)?.ty;
    for m in &members[1..] {
        let target = match btf.resolve(ty) {
            Resolved::Ptr { target } => target,
            _ => ty,
        };
        ty = btf.member(target, m)?.ty;
    }
    let target = match btf.resolve(ty) {
        Resolved::Ptr { target } => target,
        _ => ty,
    };
    let members = btf.members(target)?;
    let described: Vec<(String, String)> = members
        .into_iter()
        .filter(|m| !m.name.is_empty())
        .map(|m| (m.name, btf.describe(m.ty)))
        .collect();
    Some(candidates(
        described.iter().map(|(n, d)| (n.as_str(), d.clone())),
        prefix,
        replace,
    ))
}

fn describe_field(fields: &Fields, name: &str) -> String {
    match fields {
        Fields::Tracepoint { format, .. } => format
            .field(name)
            .map(|f| f.c_type.clone())
            .unwrap_or_default(),
        Fields::Btf { btf, params, .. } => params
            .iter()
            .find(|p| p.name == name)
            .map(|p| btf.describe(p.ty))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The probe command whose closure holds `cursor`: its kind, target strings and the
/// closure's parameter name.
fn enclosing_probe(text: &str, cursor: usize) -> Option<(ProbeKind, Vec<String>, Option<String>)> {
    let state = super::engine::engine_state();
    let mut ws = StateWorkingSet::new(state);
    let base = ws.next_span_start();
    let block = nu_parser::parse(&mut ws, Some("complete"), text.as_bytes(), false);
    let at = base + cursor;
    for pipeline in &block.pipelines {
        let first = pipeline.elements.first()?;
        let NuExpr::Call(call) = &first.expr.expr else {
            continue;
        };
        let decl = ws.get_decl(call.decl_id);
        let Some(Decl::Probe { kind, .. }) = (decl as &dyn std::any::Any).downcast_ref::<Decl>()
        else {
            continue;
        };
        let mut strings = Vec::new();
        let mut inside = None;
        for arg in &call.arguments {
            let Argument::Positional(e) = arg else {
                continue;
            };
            match &e.expr {
                NuExpr::String(s) | NuExpr::RawString(s) => strings.push(s.clone()),
                NuExpr::Closure(id) if e.span.start <= at && at <= e.span.end => {
                    let b = ws.get_block(*id);
                    inside = Some(
                        b.signature
                            .required_positional
                            .first()
                            .map(|p| p.name.clone()),
                    );
                }
                _ => {}
            }
        }
        if let Some(param) = inside {
            return Some((*kind, strings, param));
        }
    }
    None
}

/// A command name at the cursor.
fn complete_command(before: &str, cursor: usize) -> Vec<Completion> {
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
        .last()
        .map_or(cursor, |(i, _)| i);
    let prefix = &before[start..];
    if prefix.is_empty() {
        return Vec::new();
    }
    let probe_commands: Vec<(String, String)> = ProbeKind::ALL
        .iter()
        .map(|k| (format!("bpf_{}", k.word()), "probe".to_string()))
        .collect();
    let body: Vec<(String, String)> = BodyCommand::ALL
        .iter()
        .map(|c| (c.name().to_string(), "statement".to_string()))
        .chain(
            ["let", "mut", "if", "else", "return"]
                .iter()
                .map(|k| (k.to_string(), "keyword".to_string())),
        )
        .collect();
    let top_level = !before[..start].contains('{')
        || before[..start].matches('{').count() == before[..start].matches('}').count();
    let pool = if top_level { probe_commands } else { body };
    candidates(
        pool.iter().map(|(n, d)| (n.as_str(), d.clone())),
        prefix,
        start..cursor,
    )
}
