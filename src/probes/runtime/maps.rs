//! Reading per-CPU maps whose key and value sizes are only known at run time (aya's typed
//! maps want compile-time types), and merging the per-CPU values of aggregations.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use aya::maps::{Map, MapData};
use nubpf_ebpf::ir::AggKind;
use nubpf_ebpf::layout::{AggLayout, AggValue};

use super::decode::{Value, decode_fields};

/// Failures while reading a map.
#[derive(Debug, thiserror::Error)]
pub enum MapReadError {
    /// The object has no map of that name: a bug.
    #[error("internal error (a bug in nubpf): map `{0}` is missing")]
    Missing(String),
    /// The map is not of a per-CPU kind.
    #[error("internal error (a bug in nubpf): map is not per-CPU")]
    NotPerCpu,
    /// A `bpf()` syscall failed.
    #[error("reading a map failed: {0}")]
    Syscall(#[from] io::Error),
}

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

/// `union bpf_attr` as the map element commands use it.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

fn bpf(cmd: libc::c_long, attr: &mut ElemAttr) -> io::Result<()> {
    // SAFETY: `attr` is a valid `bpf_attr` prefix for the element commands, and the key and
    // value pointers in it point at buffers of the map's key and (per-CPU) value sizes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut ElemAttr,
            std::mem::size_of::<ElemAttr>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Every key of a per-CPU map with its values, one slice per possible CPU.
pub struct PerCpuEntries {
    pub key_size: usize,
    /// The value size rounded up to 8, the stride between CPUs.
    pub stride: usize,
    pub cpus: usize,
    /// `(key, values of all CPUs)`.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

fn per_cpu_data(map: &Map) -> Result<&MapData, MapReadError> {
    match map {
        Map::PerCpuHashMap(d) | Map::PerCpuArray(d) | Map::PerCpuLruHashMap(d) => Ok(d),
        _ => Err(MapReadError::NotPerCpu),
    }
}

/// Reads all entries of a per-CPU map.
pub fn read_per_cpu(map: &Map) -> Result<PerCpuEntries, MapReadError> {
    let data = per_cpu_data(map)?;
    let info = data.info().map_err(|e| io::Error::other(e.to_string()))?;
    let key_size = info.key_size() as usize;
    let stride = (info.value_size() as usize).next_multiple_of(8);
    let cpus = possible_cpus()?;
    let fd = data.fd().as_fd().as_raw_fd() as u32;
    let mut entries = Vec::new();
    let mut prev: Option<Vec<u8>> = None;
    loop {
        let mut next = vec![0u8; key_size];
        let mut attr = ElemAttr {
            map_fd: fd,
            key: prev.as_ref().map_or(0, |k| k.as_ptr() as u64),
            value: next.as_mut_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            Err(e) => return Err(e.into()),
        }
        let mut values = vec![0u8; stride * cpus];
        let mut attr = ElemAttr {
            map_fd: fd,
            key: next.as_ptr() as u64,
            value: values.as_mut_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
            Ok(()) => entries.push((next.clone(), values)),
            // Deleted between the two calls: skip it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        prev = Some(next);
    }
    Ok(PerCpuEntries {
        key_size,
        stride,
        cpus,
        entries,
    })
}

/// The number of possible CPUs (the stride count of per-CPU values), read once: reading
/// it opens a sysfs file, which a probe on `openat` would otherwise see every poll.
pub(crate) fn possible_cpus() -> io::Result<usize> {
    static CPUS: std::sync::OnceLock<Result<usize, String>> = std::sync::OnceLock::new();
    CPUS.get_or_init(|| aya::util::nr_cpus().map_err(|(_, e)| e.to_string()))
        .clone()
        .map_err(io::Error::other)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(raw)
}

/// Sums a per-CPU array of `u64` counters, returning one total per index.
pub fn read_counters(map: &Map) -> Result<Vec<u64>, MapReadError> {
    let all = read_per_cpu(map)?;
    let mut totals = Vec::new();
    for (key, values) in &all.entries {
        let index = u32::from_le_bytes([key[0], key[1], key[2], key[3]]) as usize;
        if totals.len() <= index {
            totals.resize(index + 1, 0);
        }
        totals[index] = (0..all.cpus).map(|c| u64_at(values, c * all.stride)).sum();
    }
    Ok(totals)
}

/// An aggregation value merged over CPUs. Values are widened to `i128` so that signed and
/// unsigned 64-bit inputs both fit, sums included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merged {
    Count(u64),
    Sum(i128),
    Min(i128),
    Max(i128),
    Avg { count: u64, sum: i128 },
}

impl Merged {
    /// The value users see: the count, sum, extreme, or the integer average.
    pub fn value(&self) -> i128 {
        match *self {
            Merged::Count(c) => c as i128,
            Merged::Sum(s) | Merged::Min(s) | Merged::Max(s) => s,
            Merged::Avg { count, sum } => {
                if count == 0 {
                    0
                } else {
                    sum / count as i128
                }
            }
        }
    }
}

/// One key of an aggregation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggEntry {
    pub key: Vec<Value>,
    /// The histogram bucket, for `hist` and `lhist`.
    pub bucket: Option<u64>,
    pub value: Merged,
}

/// All keys of one aggregation at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggSnapshot {
    pub name: String,
    pub kind: AggKind,
    pub entries: Vec<AggEntry>,
}

fn widen(raw: u64, signed: bool) -> i128 {
    if signed {
        raw as i64 as i128
    } else {
        raw as i128
    }
}

/// Reads an aggregation map and merges each key's per-CPU values.
pub fn read_aggregation(map: &Map, layout: &AggLayout) -> Result<AggSnapshot, MapReadError> {
    let all = read_per_cpu(map)?;
    let mut entries: Vec<AggEntry> = all
        .entries
        .iter()
        .map(|(key, values)| {
            let cpu = |c: usize, off: usize| u64_at(values, c * all.stride + off);
            let value = match (layout.value, layout.kind) {
                (AggValue::Counter, _) => Merged::Count((0..all.cpus).map(|c| cpu(c, 0)).sum()),
                (AggValue::Sum, _) => {
                    Merged::Sum((0..all.cpus).map(|c| widen(cpu(c, 0), layout.signed)).sum())
                }
                (AggValue::CountAndValue, AggKind::Avg) => Merged::Avg {
                    count: (0..all.cpus).map(|c| cpu(c, 0)).sum(),
                    sum: (0..all.cpus).map(|c| widen(cpu(c, 8), layout.signed)).sum(),
                },
                (AggValue::CountAndValue, kind) => {
                    let samples = (0..all.cpus)
                        .filter(|&c| cpu(c, 0) > 0)
                        .map(|c| widen(cpu(c, 8), layout.signed));
                    if kind == AggKind::Min {
                        Merged::Min(samples.min().unwrap_or(0))
                    } else {
                        Merged::Max(samples.max().unwrap_or(0))
                    }
                }
            };
            AggEntry {
                key: decode_fields(&layout.key, key),
                bucket: layout.bucket_offset.map(|off| u64_at(key, off as usize)),
                value,
            }
        })
        .collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key).then(a.bucket.cmp(&b.bucket)));
    Ok(AggSnapshot {
        name: layout.name.clone(),
        kind: layout.kind,
        entries,
    })
}
