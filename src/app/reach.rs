//! What this kernel cannot do for a probe: the one explanation `run` and the workbench give
//! when a probe needs kprobes or fentry that the kernel lacks, with what would work instead.

use nubpf_ebpf::program::Attach;

use crate::probes::catalogue::Catalogue;
use crate::probes::front::{Diagnostic, ScriptProbe};

/// The kernel facts that decide whether a kernel-function probe can attach.
#[derive(Clone, Copy, Debug)]
pub struct Reach<'a> {
    /// `uname -r`, quoted in the message.
    pub release: &'a str,
    /// The kprobe PMU exists.
    pub kprobes: bool,
    /// fentry / fexit programs load.
    pub fentry: bool,
}

/// Why `probe` cannot attach here, as a diagnostic on its span; `None` when it can (as far as
/// the kernel's features go). `bpf_kprobe` needs kprobes or fentry (it goes through fentry
/// when the kernel allows it); `bpf_fentry` needs fentry.
pub fn refusal(probe: &ScriptProbe, reach: Reach, catalogue: &Catalogue) -> Option<Diagnostic> {
    match &probe.attach {
        Attach::Kprobe { function } | Attach::Kretprobe { function }
            if !reach.kprobes && !reach.fentry =>
        {
            let d = Diagnostic::error(
                "no_kprobes",
                format!(
                    "this kernel ({}) has no kprobes (CONFIG_KPROBES is off), so `{function}` cannot be probed",
                    reach.release
                ),
                probe.span,
            )
            .with_label("needs kprobes");
            let d = match tracepoint_alternative(function, catalogue) {
                Some(tp) => d.with_help(format!(
                    "the tracepoint `{tp}` sees the same calls: `bpf_tracepoint \"{tp}\" {{|ctx| ... }}`"
                )),
                None => d.with_help("tracepoints (`nubpf-tui list tracepoints`) and uprobes work here"),
            };
            Some(d.with_help(
                "on kernels that allow it, `bpf_fentry` probes the function without kprobes",
            ))
        }
        Attach::Fentry { function } | Attach::Fexit { function } if !reach.fentry => {
            let d = Diagnostic::error(
                "no_fentry",
                format!(
                    "this kernel ({}) refuses fentry/fexit programs, so `{function}` cannot be probed this way",
                    reach.release
                ),
                probe.span,
            )
            .with_label("needs fentry");
            Some(if reach.kprobes {
                d.with_help(format!(
                    "`bpf_kprobe \"{function}\"` sees the same arguments through kprobes"
                ))
            } else {
                match tracepoint_alternative(function, catalogue) {
                    Some(tp) => d.with_help(format!("the tracepoint `{tp}` sees the same calls")),
                    None => d.with_help(
                        "tracepoints (`nubpf-tui list tracepoints`) and uprobes work here",
                    ),
                }
            })
        }
        _ => None,
    }
}

/// The syscall tracepoint behind a kernel function, when its name says which one
/// (`do_sys_open` → `syscalls:sys_enter_openat`, `vfs_read` → `syscalls:sys_enter_read`).
pub fn tracepoint_alternative(function: &str, catalogue: &Catalogue) -> Option<String> {
    let names = catalogue.tracepoint_names().ok()?;
    let base = [
        "__x64_sys_",
        "__se_sys_",
        "__do_sys_",
        "do_sys_",
        "ksys_",
        "sys_",
        "vfs_",
        "do_",
    ]
    .iter()
    .find_map(|p| function.strip_prefix(p))
    .unwrap_or(function);
    let base = base.trim_end_matches(|c: char| c.is_ascii_digit());
    [
        format!("syscalls:sys_enter_{base}at"),
        format!("syscalls:sys_enter_{base}"),
    ]
    .into_iter()
    .find(|candidate| names.binary_search(candidate).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::front;

    fn probe(source: &str, catalogue: &Catalogue) -> ScriptProbe {
        let (script, d) = front::compile(source, catalogue);
        script.unwrap_or_else(|| panic!("{d:?}")).probes.remove(0)
    }

    #[test]
    fn kernel_function_probes_are_refused_only_without_the_mechanism_they_need() {
        let catalogue = Catalogue::system();
        if catalogue.tracepoint_names().is_err()
            || !std::path::Path::new(crate::probes::catalogue::VMLINUX_BTF).exists()
        {
            let why = "needs tracefs and vmlinux BTF (root) to compile kernel-function probes";
            assert!(
                std::env::var("NUBPF_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
                "NUBPF_REQUIRE_PRIVILEGED=1 but this test {why}"
            );
            eprintln!("skipping: this test {why}");
            return;
        }
        let kprobe = probe(r#"bpf_kprobe "vfs_read" {|ctx| count }"#, &catalogue);
        let fentry = probe(r#"bpf_fentry "vfs_read" {|ctx| count }"#, &catalogue);
        let reach = |kprobes, fentry| Reach {
            release: "6.x",
            kprobes,
            fentry,
        };
        let none = refusal(&kprobe, reach(false, false), &catalogue).expect("refused");
        assert_eq!(none.code, "nubpf::no_kprobes");
        assert!(
            none.message.contains("(6.x) has no kprobes"),
            "{}",
            none.message
        );
        assert_eq!(none.span, kprobe.span);
        assert!(
            none.help[0].contains("syscalls:sys_enter_read"),
            "{:?}",
            none.help
        );
        let kretprobe = probe(
            r#"bpf_kretprobe "vfs_read" {|ctx| sum $ctx.retval }"#,
            &catalogue,
        );
        let d = refusal(&kretprobe, reach(false, false), &catalogue).expect("refused");
        assert_eq!(d.code, "nubpf::no_kprobes");
        assert!(refusal(&kretprobe, reach(false, true), &catalogue).is_none());
        // Either mechanism is enough for bpf_kprobe.
        assert!(refusal(&kprobe, reach(true, false), &catalogue).is_none());
        assert!(refusal(&kprobe, reach(false, true), &catalogue).is_none());
        // bpf_fentry needs fentry; with kprobes the help points there.
        let d = refusal(&fentry, reach(true, false), &catalogue).expect("refused");
        assert_eq!(d.code, "nubpf::no_fentry");
        assert!(
            d.help[0].contains("bpf_kprobe \"vfs_read\""),
            "{:?}",
            d.help
        );
        let d = refusal(&fentry, reach(false, false), &catalogue).expect("refused");
        assert!(
            d.help[0].contains("syscalls:sys_enter_read"),
            "{:?}",
            d.help
        );
        assert!(refusal(&fentry, reach(false, true), &catalogue).is_none());
    }
}
