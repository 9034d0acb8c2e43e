//! The kernel helper functions codegen calls, with their stable numbers and names.

/// A BPF helper function, numbered as in the kernel's `enum bpf_func_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Helper {
    MapLookupElem,
    MapUpdateElem,
    KtimeGetNs,
    GetSmpProcessorId,
    GetCurrentPidTgid,
    GetCurrentUidGid,
    GetCurrentComm,
    ProbeReadUser,
    ProbeReadKernel,
    ProbeReadUserStr,
    ProbeReadKernelStr,
    RingbufReserve,
    RingbufSubmit,
    RingbufDiscard,
}

impl Helper {
    pub const ALL: [Helper; 14] = [
        Helper::MapLookupElem,
        Helper::MapUpdateElem,
        Helper::KtimeGetNs,
        Helper::GetSmpProcessorId,
        Helper::GetCurrentPidTgid,
        Helper::GetCurrentUidGid,
        Helper::GetCurrentComm,
        Helper::ProbeReadUser,
        Helper::ProbeReadKernel,
        Helper::ProbeReadUserStr,
        Helper::ProbeReadKernelStr,
        Helper::RingbufReserve,
        Helper::RingbufSubmit,
        Helper::RingbufDiscard,
    ];

    pub const fn id(self) -> i32 {
        match self {
            Helper::MapLookupElem => 1,
            Helper::MapUpdateElem => 2,
            Helper::KtimeGetNs => 5,
            Helper::GetSmpProcessorId => 8,
            Helper::GetCurrentPidTgid => 14,
            Helper::GetCurrentUidGid => 15,
            Helper::GetCurrentComm => 16,
            Helper::ProbeReadUser => 112,
            Helper::ProbeReadKernel => 113,
            Helper::ProbeReadUserStr => 114,
            Helper::ProbeReadKernelStr => 115,
            Helper::RingbufReserve => 131,
            Helper::RingbufSubmit => 132,
            Helper::RingbufDiscard => 133,
        }
    }

    /// The kernel's name, as the verifier log prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Helper::MapLookupElem => "bpf_map_lookup_elem",
            Helper::MapUpdateElem => "bpf_map_update_elem",
            Helper::KtimeGetNs => "bpf_ktime_get_ns",
            Helper::GetSmpProcessorId => "bpf_get_smp_processor_id",
            Helper::GetCurrentPidTgid => "bpf_get_current_pid_tgid",
            Helper::GetCurrentUidGid => "bpf_get_current_uid_gid",
            Helper::GetCurrentComm => "bpf_get_current_comm",
            Helper::ProbeReadUser => "bpf_probe_read_user",
            Helper::ProbeReadKernel => "bpf_probe_read_kernel",
            Helper::ProbeReadUserStr => "bpf_probe_read_user_str",
            Helper::ProbeReadKernelStr => "bpf_probe_read_kernel_str",
            Helper::RingbufReserve => "bpf_ringbuf_reserve",
            Helper::RingbufSubmit => "bpf_ringbuf_submit",
            Helper::RingbufDiscard => "bpf_ringbuf_discard",
        }
    }

    pub fn from_id(id: i32) -> Option<Helper> {
        Helper::ALL.into_iter().find(|h| h.id() == id)
    }
}

/// `bpf_map_update_elem` flag: create or replace.
pub const BPF_ANY: i32 = 0;
/// `bpf_ringbuf_submit` flag: do not wake the reader; it polls on a timer instead.
pub const BPF_RB_NO_WAKEUP: i32 = 1;
