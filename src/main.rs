//! nubpf-tui: command-line entry point. Thin: parses arguments and dispatches to the library
//! (`nubpf_tui::app` for commands, `nubpf_tui::probes` for the compiler and runtime).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use nubpf_tui::app::list::{self, ListWhat};
use nubpf_tui::app::output::Format;
use nubpf_tui::app::run::{self, RunOptions, exit, read_source};
use nubpf_tui::app::session::export::{self, TableFormat};
use nubpf_tui::app::session::replay::{self, ReplayOptions};
use nubpf_tui::app::session::{Recording, plot};
use nubpf_tui::probes::catalogue::Catalogue;
use nubpf_tui::probes::front::{self, diagnostic};
use nubpf_tui::probes::runtime::features::{Features, Probed};

const EXIT_CODES: &str = "\
Exit codes: 0 success (also after Ctrl-C), 1 errors in the script or its pipeline,
2 bad arguments, 3 missing privileges (root or CAP_BPF + CAP_PERFMON), 4 the kernel cannot
run the probes, 5 the command given with -c could not start.";

/// A terminal workbench for eBPF probes written as Nushell closures.
#[derive(Parser, Debug)]
#[command(
    name = "nubpf-tui",
    version,
    about,
    after_help = EXIT_CODES,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// A probe script to open in the workbench (created on save when it does not exist).
    file: Option<PathBuf>,
    /// Start the editor with vi keybindings (F10 switches).
    #[arg(long)]
    vi: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// A script: a file, or its text with `-e`.
#[derive(clap::Args, Debug)]
struct ScriptArgs {
    /// The script file.
    file: Option<PathBuf>,
    /// The script's text instead of a file.
    #[arg(
        short = 'e',
        long = "expr",
        value_name = "SOURCE",
        conflicts_with = "file"
    )]
    source: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compile a probe script and report diagnostics, without loading anything (no root
    /// needed). Exits 0 when every probe compiles, 1 otherwise.
    Check {
        #[command(flatten)]
        script: ScriptArgs,
        /// Also print the probe IR or the generated eBPF instructions.
        #[arg(long, value_enum)]
        dump: Option<Dump>,
        /// Also write the generated ELF object (what gets loaded) to FILE.
        #[arg(long, value_name = "FILE")]
        emit_elf: Option<PathBuf>,
    },
    /// Attach a script's probes and stream what they emit through their Nushell pipelines;
    /// print the in-kernel aggregations at the end. Stops on Ctrl-C, SIGTERM, --duration,
    /// --count, or when the -c command exits.
    #[command(after_help = EXIT_CODES)]
    Run {
        #[command(flatten)]
        script: ScriptArgs,
        /// Output format of records and aggregations.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Stop after this long, e.g. `5sec`, `500ms`, `2min`.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Stop after this many records.
        #[arg(long)]
        count: Option<u64>,
        /// Run this command, trace while it runs, stop when it exits. Its stdout goes to
        /// stderr, so stdout carries only records.
        #[arg(short = 'c', long = "command", value_name = "CMD")]
        command: Option<String>,
        /// Only trace this process.
        #[arg(long)]
        pid: Option<u32>,
        /// Also print the aggregations this often, e.g. `1sec`.
        #[arg(long, value_parser = parse_duration)]
        interval: Option<Duration>,
        /// Record every record, aggregation snapshot and loss into this new SQLite file
        /// (mode 0600, owned by the user who ran sudo).
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Size of the ring buffer the probes emit into, e.g. `256KiB`, `16MiB`: a power of
        /// two, at least a page. A bigger one absorbs longer bursts before events are lost.
        #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_buffer_size)]
        buffer_size: u32,
    },
    /// Play a recording back, without root: in the workbench (pause, seek, speed, edit a
    /// pipeline to re-run it), or printed with `--format`.
    Replay {
        /// The recording (`run --record`, or F9 in the workbench).
        file: PathBuf,
        /// Print instead of opening the workbench.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Play at recorded speed times N (default: as fast as possible when printing,
        /// recorded speed in the workbench).
        #[arg(long)]
        speed: Option<f64>,
    },
    /// Export a recording: its probes as a `.nu` script, or one probe's records as a table.
    Export {
        /// The recording.
        file: PathBuf,
        /// The new file to write.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// Export this probe's records instead of the script.
        #[arg(long)]
        probe: Option<String>,
        /// Table format for `--probe`.
        #[arg(long, value_enum, default_value = "csv")]
        format: TableFormat,
    },
    /// Plot a recorded histogram, or a probe's events per second, as SVG or PNG.
    Plot {
        /// The recording.
        file: PathBuf,
        /// The probe to plot.
        #[arg(long)]
        probe: String,
        /// Which histogram, when the probe has several.
        #[arg(long)]
        aggregation: Option<String>,
        /// One key of a keyed histogram (`--key bash`, or `--key bash,12` for a record
        /// key); without it the keys are added up.
        #[arg(long)]
        key: Option<String>,
        /// The new file: `.svg` or `.png`.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// List what can be probed: tracepoints, kernel functions, or a binary's functions.
    /// Without a kind, tracepoints and kernel functions together (`tracepoint:` and
    /// `kfunc:` before each name), e.g. `nubpf-tui list '*openat*'`.
    #[command(args_conflicts_with_subcommands = true)]
    List {
        #[command(subcommand)]
        what: Option<ListCommand>,
        #[command(flatten)]
        args: ListArgs,
    },
    /// Print what this kernel supports.
    Info,
}

#[derive(Subcommand, Debug)]
enum ListCommand {
    /// Tracepoints as `category:name`.
    Tracepoints(ListArgs),
    /// Kernel functions with BTF prototypes (kprobe / fentry targets).
    Kfuncs(ListArgs),
    /// Function symbols of a binary or library (uprobe targets).
    Uprobes {
        /// The binary.
        binary: String,
        #[command(flatten)]
        args: ListArgs,
    },
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// Filter: `*` and `?` wildcards, or a substring.
    pattern: Option<String>,
    /// Show fields or parameters with their types.
    #[arg(long)]
    args: bool,
    /// `table` (lines) or `json` (one array).
    #[arg(long, value_enum, default_value = "table")]
    format: ListFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Dump {
    Ir,
    Asm,
}

/// Parses Nushell-style durations: `5sec`, `500ms`, `2min`, `1hr`, `10us`, plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let secs = match unit {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "ns" => n / 1e9,
        "min" | "m" => n * 60.0,
        "hr" | "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` (use ns, us, ms, sec, min, hr)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a ring-buffer size: `4096`, `64KiB`, `4MiB` (also `k`, `KB`, `M`, `MB`, `GiB`):
/// a power of two from one page (4 KiB) to 1 GiB.
fn parse_buffer_size(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size"))?;
    let unit_bytes: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown unit `{other}` (use KiB, MiB or GiB)")),
    };
    let bytes = n.saturating_mul(unit_bytes);
    if !(4096..=1 << 30).contains(&bytes) || !bytes.is_power_of_two() {
        return Err(format!(
            "`{text}` is {bytes} bytes; the ring buffer needs a power of two from 4KiB to 1GiB"
        ));
    }
    Ok(bytes as u32)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check {
            script,
            dump,
            emit_elf,
        }) => check(script.file, script.source, dump, emit_elf.as_deref()),
        Some(Command::Run {
            script: ScriptArgs { file, source },
            format,
            duration,
            count,
            command,
            pid,
            interval,
            record,
            buffer_size,
        }) => {
            let (source_name, source) = match read_source(file.as_deref(), source) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("nubpf-tui run: {e}");
                    return ExitCode::from(exit::USAGE);
                }
            };
            run::run(RunOptions {
                source_name,
                source,
                format,
                duration,
                count,
                command,
                pid,
                interval,
                record,
                buffer_size,
            })
        }
        Some(Command::Replay {
            file,
            format,
            speed,
        }) => {
            if speed.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
                eprintln!("nubpf-tui replay: --speed must be a positive number");
                return ExitCode::from(exit::USAGE);
            }
            match format {
                Some(format) => replay::replay(&file, ReplayOptions { format, speed }),
                None => nubpf_tui::app::workbench::replay(
                    &file,
                    speed,
                    nubpf_tui::editor::Keymap::Emacs,
                ),
            }
        }
        Some(Command::Export {
            file,
            output,
            probe,
            format,
        }) => export_command(&file, &output, probe.as_deref(), format),
        Some(Command::Plot {
            file,
            probe,
            aggregation,
            key,
            output,
        }) => plot_command(
            &file,
            &probe,
            aggregation.as_deref(),
            key.as_deref(),
            &output,
        ),
        Some(Command::List { what, args }) => list_command(what, args),
        Some(Command::Info) => info(),
        None => nubpf_tui::app::workbench::run(
            cli.file,
            if cli.vi {
                nubpf_tui::editor::Keymap::Vi
            } else {
                nubpf_tui::editor::Keymap::Emacs
            },
        ),
    }
}

fn check(
    file: Option<PathBuf>,
    source: Option<String>,
    dump: Option<Dump>,
    emit_elf: Option<&std::path::Path>,
) -> ExitCode {
    let (name, text) = match read_source(file.as_deref(), source) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nubpf-tui check: {e}");
            return ExitCode::from(exit::USAGE);
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
        return ExitCode::from(exit::SCRIPT);
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
    if let Some(path) = emit_elf
        && let Err(e) = std::fs::write(path, &script.compiled.object)
    {
        eprintln!("nubpf-tui check: cannot write {}: {e}", path.display());
        return ExitCode::from(exit::USAGE);
    }
    for p in &script.probes {
        let note = p
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        eprintln!("ok: {} on {}{note}", p.name, p.attach.describe());
    }
    ExitCode::SUCCESS
}

fn export_command(
    file: &std::path::Path,
    output: &std::path::Path,
    probe: Option<&str>,
    format: TableFormat,
) -> ExitCode {
    let result = Recording::open(file).and_then(|rec| match probe {
        None => export::export_script(&rec, output),
        Some(p) => export::table_text(&rec, p, format)
            .and_then(|bytes| nubpf_tui::app::session::files::write_private(output, &bytes)),
    });
    match result {
        Ok(()) => {
            eprintln!("nubpf-tui: wrote {}", output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nubpf-tui export: {e}");
            ExitCode::from(exit::SCRIPT)
        }
    }
}

fn plot_command(
    file: &std::path::Path,
    probe: &str,
    aggregation: Option<&str>,
    key: Option<&str>,
    output: &std::path::Path,
) -> ExitCode {
    let result = Recording::open(file)
        .map_err(|e| e.to_string())
        .and_then(|rec| plot::data(&rec, probe, aggregation, key).map_err(|e| e.to_string()))
        .and_then(|data| plot::write(&data, output));
    match result {
        Ok(()) => {
            eprintln!("nubpf-tui: wrote {}", output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nubpf-tui plot: {e}");
            ExitCode::from(exit::SCRIPT)
        }
    }
}

fn list_command(what: Option<ListCommand>, all_args: ListArgs) -> ExitCode {
    let catalogue = Catalogue::system();
    let (parts, args) = match what {
        Some(ListCommand::Tracepoints(a)) => (vec![(ListWhat::Tracepoints, "")], a),
        Some(ListCommand::Kfuncs(a)) => (vec![(ListWhat::Kfuncs, "")], a),
        Some(ListCommand::Uprobes { binary, args }) => {
            (vec![(ListWhat::Uprobes(binary), "")], args)
        }
        None => (
            vec![
                (ListWhat::Tracepoints, "tracepoint:"),
                (ListWhat::Kfuncs, "kfunc:"),
            ],
            all_args,
        ),
    };
    // Without a kind, what can be read is listed and what cannot is said.
    let mut entries = Vec::new();
    let mut failed = 0;
    for (what, prefix) in &parts {
        match list::entries(&catalogue, what, args.pattern.as_deref(), args.args) {
            Ok(found) => entries.extend(found.into_iter().map(|mut e| {
                e.name.insert_str(0, prefix);
                e
            })),
            Err(e) => {
                failed += 1;
                eprintln!("nubpf-tui list: {e}");
            }
        }
    }
    if failed == parts.len() {
        return ExitCode::from(exit::KERNEL);
    }
    let mut out = std::io::stdout().lock();
    let _ = list::print(
        &mut out,
        &entries,
        args.format == ListFormat::Json,
        args.args,
    );
    ExitCode::SUCCESS
}

fn info() -> ExitCode {
    let f = Features::detect();
    let yes = |b: bool| if b { "yes" } else { "no" };
    // Loading tiny programs tells the rest; that needs the privileges to load.
    let probed = nubpf_tui::app::privileges::check()
        .is_ok()
        .then(|| Probed::probe(&mut nubpf_tui::probes::runtime::Runtime::new()));
    let loaded = |get: fn(&Probed) -> bool| {
        probed
            .as_ref()
            .map_or("unknown (needs root)", |p| yes(get(p)))
    };
    println!("System");
    println!("  kernel: {}", f.release);
    println!("  tracefs mounted: {}", yes(f.tracefs));
    println!("  vmlinux BTF: {}", yes(f.btf));
    println!("Probe kinds");
    println!("  tracepoint: {}", yes(f.tracefs));
    println!("  raw_tracepoint, tp_btf: {}", yes(f.btf));
    println!(
        "  kprobe, kretprobe: {}",
        if f.kprobes {
            "yes"
        } else {
            "no (CONFIG_KPROBES is off)"
        }
    );
    println!("  fentry, fexit: {}", loaded(|p| p.fentry));
    println!("  uprobe, uretprobe: {}", yes(f.uprobes));
    println!("  profile, interval (perf events): yes");
    println!(
        "  bpf_kprobe attaches through: {}",
        match (probed.map(|p| p.fentry), f.kprobes) {
            (Some(true), _) => "fentry (kprobes as fallback)",
            (_, true) => "kprobe",
            (Some(false), false) => "nothing: no kprobes and no fentry",
            (None, false) => "unknown (needs root)",
        }
    );
    println!("Features");
    println!("  ring buffer: {}", loaded(|p| p.ringbuf));
    println!(
        "  bpf_probe_read_kernel: {}",
        loaded(|p| p.probe_read_kernel)
    );
    println!("  perf link: {}", loaded(|p| p.perf_link));
    ExitCode::SUCCESS
}
