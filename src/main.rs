//! nubpf-tui: command-line entry point. Thin: parses arguments and dispatches; the work
//! lives in the library (`nubpf_tui::probes`, and the app, editor and views as they land).

use clap::Parser;

/// A terminal workbench for eBPF probes written as Nushell closures.
#[derive(Parser, Debug)]
#[command(name = "nubpf-tui", version, about)]
struct Cli {}

fn main() -> std::process::ExitCode {
    let _cli = Cli::parse();
    eprintln!(
        "nubpf-tui: the workbench and its subcommands are not built yet; \
         this build carries the eBPF backend only (see README.md)"
    );
    std::process::ExitCode::from(2)
}
