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
