//! Front-end goldens: every `tests/front/ok/*.nu` compiles, and its IR and disassembly are
//! snapshotted; every `tests/front/err/*.nu` fails, and its rendered diagnostics are
//! snapshotted. Both read this machine's catalogue (tracefs, BTF, /bin/bash), so they need
//! tracefs readable: as root, or they skip (fail under `NUBPF_REQUIRE_PRIVILEGED=1`).
//!
//! Update with `INSTA_UPDATE=always cargo test --test front_golden` and review the diff.

mod common;

use std::path::{Path, PathBuf};

use nubpf_tui::probes::catalogue::Catalogue;
use nubpf_tui::probes::front::{self, diagnostic};

fn cases(kind: &str) -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/front")
        .join(kind);
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "nu"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    files.sort();
    files
}

#[test]
fn ok_cases_compile_to_the_recorded_ir_and_code() {
    if !common::privileged("ok_cases_compile_to_the_recorded_ir_and_code") {
        return;
    }
    let catalogue = Catalogue::system();
    let cases = cases("ok");
    assert!(cases.len() >= 40, "only {} ok cases", cases.len());
    for (name, path) in cases {
        let source = std::fs::read_to_string(&path).unwrap();
        let (script, diagnostics) = front::compile(&source, &catalogue);
        let Some(script) = script else {
            panic!(
                "{name} does not compile:\n{}",
                diagnostic::render(&name, &source, &diagnostics)
            );
        };
        let mut out = source.clone();
        if !diagnostics.is_empty() {
            let rendered = diagnostic::render(&format!("{name}.nu"), &source, &diagnostics);
            out.push_str(&format!("--- warnings\n{rendered}"));
        }
        out.push_str(&format!("--- ir\n{}", script.module));
        for p in &script.probes {
            if let Some(note) = &p.note {
                out.push_str(&format!("note ({}): {note}\n", p.name));
            }
            if let Some((pipeline, _)) = &p.pipeline {
                out.push_str(&format!("pipeline ({}): {pipeline}\n", p.name));
            }
        }
        out.push_str("--- asm\n");
        for p in &script.compiled.programs {
            out.push_str(&format!("; {} ({})\n", p.name, p.attach.describe()));
            out.push_str(&p.disassemble(&script.compiled.maps));
        }
        insta::assert_snapshot!(format!("ok__{name}"), out);
    }
}

#[test]
fn err_cases_render_the_recorded_diagnostics() {
    if !common::privileged("err_cases_render_the_recorded_diagnostics") {
        return;
    }
    let catalogue = Catalogue::system();
    let cases = cases("err");
    assert!(cases.len() >= 30, "only {} err cases", cases.len());
    for (name, path) in cases {
        let source = std::fs::read_to_string(&path).unwrap();
        let (script, diagnostics) = front::compile(&source, &catalogue);
        assert!(script.is_none(), "{name} compiled but must not");
        assert!(
            diagnostics.iter().any(|d| d.is_error()),
            "{name}: no error diagnostic"
        );
        assert!(
            diagnostics.iter().all(|d| d.code != "nubpf::internal"),
            "{name}: an internal error:\n{}",
            diagnostic::render(&name, &source, &diagnostics)
        );
        let rendered = diagnostic::render(&format!("{name}.nu"), &source, &diagnostics);
        insta::assert_snapshot!(
            format!("err__{name}"),
            format!("{source}--- diagnostics\n{rendered}")
        );
    }
}

#[test]
fn the_seed_call_syntax_compiles_exactly_like_nushell_calls() {
    if !common::privileged("the_seed_call_syntax_compiles_exactly_like_nushell_calls") {
        return;
    }
    let catalogue = Catalogue::system();
    let object = |source: &str| {
        let (script, diagnostics) = front::compile(source, &catalogue);
        let script = script.unwrap_or_else(|| panic!("{source}: {diagnostics:?}"));
        assert!(diagnostics.is_empty(), "{source}: {diagnostics:?}");
        let asm: Vec<String> = script
            .compiled
            .programs
            .iter()
            .map(|p| p.disassemble(&script.compiled.maps))
            .collect();
        (
            script.compiled.object.clone(),
            asm,
            script.compiled.events.clone(),
        )
    };
    let tp = r#"bpf_tracepoint "syscalls:sys_enter_openat""#;
    for (seed, idiomatic) in [
        ("{|e| emit($e.pid) }", "{|e| emit $e.pid }"),
        ("{|e| emit($e.filename) }", "{|e| emit ($e.filename) }"),
        ("{|e| count() }", "{|e| count }"),
        (
            "{|e| if $e.pid > 1 { emit($e.pid) } }",
            "{|e| if $e.pid > 1 { emit $e.pid } }",
        ),
    ] {
        assert_eq!(
            object(&format!("{tp} {seed}")),
            object(&format!("{tp} {idiomatic}")),
            "{seed} vs {idiomatic}"
        );
    }
}
