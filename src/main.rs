//! nubpf-tui: command-line entry point. Thin: parses arguments and dispatches; the work
//! lives in the library (`nubpf_tui::probes`, and the app, editor and views as they land).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use nubpf_tui::probes::catalogue::Catalogue;
use nubpf_tui::probes::front::{self, diagnostic};

/// A terminal workbench for eBPF probes written as Nushell closures.
#[derive(Parser, Debug)]
#[command(name = "nubpf-tui", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compile a probe script and report diagnostics, without loading anything (no root
    /// needed). Exits 0 when every probe compiles, 1 otherwise.
    Check {
        /// The script to check.
        file: Option<PathBuf>,
        /// Check this source text instead of a file.
        #[arg(
            short = 'e',
            long = "expr",
            value_name = "SOURCE",
            conflicts_with = "file"
        )]
        source: Option<String>,
        /// Also print the probe IR or the generated eBPF instructions.
        #[arg(long, value_enum)]
        dump: Option<Dump>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Dump {
    Ir,
    Asm,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { file, source, dump }) => check(file, source, dump),
        None => {
            eprintln!(
                "nubpf-tui: the workbench is not built yet; `nubpf-tui check` compiles probe \
                 scripts (see `nubpf-tui --help`)"
            );
            ExitCode::from(2)
        }
    }
}

/// Exit status for usage problems (unreadable files, bad arguments).
const EXIT_USAGE: u8 = 2;

fn check(file: Option<PathBuf>, source: Option<String>, dump: Option<Dump>) -> ExitCode {
    let (name, text) = match (file, source) {
        (Some(path), _) => match std::fs::read_to_string(&path) {
            Ok(text) => (path.display().to_string(), text),
            Err(e) => {
                eprintln!("nubpf-tui: cannot read {}: {e}", path.display());
                return ExitCode::from(EXIT_USAGE);
            }
        },
        (None, Some(text)) => ("<expr>".to_string(), text),
        (None, None) => {
            eprintln!("nubpf-tui check: give a FILE or `-e SOURCE`");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let catalogue = Catalogue::system();
    let (script, diagnostics) = front::compile(&text, &catalogue);
    let rendered = if std::io::stderr().is_terminal() {
        diagnostic::render_color(&name, &text, &diagnostics)
    } else {
        diagnostic::render(&name, &text, &diagnostics)
    };
    eprint!("{rendered}");
    let Some(script) = script else {
        return ExitCode::from(1);
    };
    match dump {
        Some(Dump::Ir) => print!("{}", script.module),
        Some(Dump::Asm) => {
            for p in &script.compiled.programs {
                println!("; {} ({})", p.name, p.attach.describe());
                print!("{}", p.disassemble(&script.compiled.maps));
            }
        }
        None => {}
    }
    for p in &script.probes {
        let note = p
            .note
            .as_deref()
            .map(|n| format!(" — {n}"))
            .unwrap_or_default();
        eprintln!("ok: {} ({}){note}", p.name, p.attach.describe());
    }
    ExitCode::SUCCESS
}
