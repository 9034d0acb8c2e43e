//! What this kernel offers, detected once at start (never in the compile path): probe kinds,
//! BTF, tracefs. Printed by `nubpf-tui info`, consulted before attaching.

use std::path::Path;

/// Detected kernel facilities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Features {
    /// The kernel release (`uname -r`).
    pub release: String,
    /// `CONFIG_KPROBES`: the kprobe PMU exists.
    pub kprobes: bool,
    /// The uprobe PMU exists.
    pub uprobes: bool,
    /// vmlinux BTF is exposed.
    pub btf: bool,
    /// tracefs is mounted where nubpf looks for it.
    pub tracefs: bool,
}

impl Features {
    pub fn detect() -> Features {
        Features {
            release: release(),
            kprobes: Path::new("/sys/bus/event_source/devices/kprobe").exists(),
            uprobes: Path::new("/sys/bus/event_source/devices/uprobe").exists(),
            btf: Path::new(crate::probes::catalogue::VMLINUX_BTF).exists(),
            tracefs: Path::new(crate::probes::catalogue::TRACEFS)
                .join("events")
                .is_dir(),
        }
    }
}

fn release() -> String {
    // SAFETY: uname fills the struct it is given.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "unknown".into();
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// Mounts tracefs at its usual place when it is not mounted. Needs root.
pub fn mount_tracefs() -> std::io::Result<()> {
    let target = std::ffi::CString::new(crate::probes::catalogue::TRACEFS).unwrap_or_default();
    let fstype = c"tracefs";
    // SAFETY: all pointers are valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What loading tiny programs tells about the kernel (needs the privileges to load).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Probed {
    /// fentry / fexit programs load (trampolines allowed).
    pub fentry: bool,
    /// Ring buffer maps can be created.
    pub ringbuf: bool,
    /// `bpf_probe_read_kernel` exists.
    pub probe_read_kernel: bool,
    /// Perf events attach through BPF links.
    pub perf_link: bool,
}

fn loads(runtime: &mut super::Runtime, attach: nubpf_ebpf::program::Attach, emit: bool) -> bool {
    use nubpf_ebpf::Span;
    use nubpf_ebpf::ir::{Builtin, Expr, ExprKind, IntTy, Module, Probe, Stmt, StmtKind, Ty};
    let body = if emit {
        vec![Stmt {
            kind: StmtKind::Emit {
                fields: vec![(
                    "pid".into(),
                    Expr::new(
                        ExprKind::Builtin(Builtin::Pid),
                        Ty::Int(IntTy::U32),
                        Span::DUMMY,
                    ),
                )],
            },
            span: Span::DUMMY,
        }]
    } else {
        Vec::new()
    };
    let module = Module {
        probes: vec![Probe {
            name: "probe".into(),
            attach,
            locals: Vec::new(),
            body,
            span: Span::DUMMY,
        }],
        options: nubpf_ebpf::ir::Options {
            ringbuf_bytes: 4096,
            ..Default::default()
        },
        ..Module::default()
    };
    match nubpf_ebpf::compile(&module) {
        Ok(compiled) => runtime.load(std::sync::Arc::new(compiled)).is_ok(),
        Err(_) => false,
    }
}

impl Probed {
    /// Loads (never attaches) a few tiny programs once.
    pub fn probe(runtime: &mut super::Runtime) -> Probed {
        use nubpf_ebpf::program::Attach;
        let f = aya::features();
        Probed {
            fentry: loads(
                runtime,
                Attach::Fentry {
                    function: "vfs_read".into(),
                },
                false,
            ),
            ringbuf: loads(
                runtime,
                Attach::RawTracepoint {
                    name: "sys_enter".into(),
                },
                true,
            ),
            probe_read_kernel: f.bpf_probe_read_kernel(),
            perf_link: f.bpf_perf_link(),
        }
    }
}
