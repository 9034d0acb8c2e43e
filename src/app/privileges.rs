//! Privilege checks before loading probes: root, or the capabilities eBPF tracing needs.

/// Capabilities a tracing session needs besides root.
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const CAP_SYS_ADMIN: u32 = 21;

/// The effective capability mask of this process.
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// `Ok` when this process may load and attach probes; otherwise a message naming what is
/// missing and how to grant it.
pub fn check() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    let caps = effective_caps();
    let has = |c: u32| caps & (1 << c) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|(c, _)| !has(*c))
        .map(|(_, n)| n)
        .collect();
    Err(format!(
        "loading probes needs root or {}; this process lacks {}\n  \
         hint: run it with sudo, or grant the capabilities once: \
         sudo setcap cap_bpf,cap_perfmon,cap_dac_read_search+ep {}",
        "CAP_BPF and CAP_PERFMON",
        missing.join(" and "),
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "nubpf-tui".into())
    ))
}
