//! Map kinds and definitions as they are written into the object's legacy `maps` section.

/// A map's index in its module; also the order of the map symbols in the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapId(pub u32);

/// The map types codegen uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapKind {
    Hash,
    Array,
    PerCpuHash,
    PerCpuArray,
    RingBuf,
}

impl MapKind {
    /// The kernel's `enum bpf_map_type` value.
    pub const fn type_id(self) -> u32 {
        match self {
            MapKind::Hash => 1,
            MapKind::Array => 2,
            MapKind::PerCpuHash => 5,
            MapKind::PerCpuArray => 6,
            MapKind::RingBuf => 27,
        }
    }

    pub fn is_per_cpu(self) -> bool {
        matches!(self, MapKind::PerCpuHash | MapKind::PerCpuArray)
    }
}

/// One map of a module, as codegen decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    /// The name of the map symbol; what user space looks the map up by.
    pub name: String,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub flags: u32,
}

/// Hash maps allocate entries on insert instead of all up front: creating a preallocated
/// per-CPU hash of 10 240 keys costs milliseconds at load time.
pub const BPF_F_NO_PREALLOC: u32 = 1;

impl MapDef {
    /// The 20-byte `struct bpf_map_def` aya reads from the `maps` section.
    pub fn encode(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        for (i, v) in [
            self.kind.type_id(),
            self.key_size,
            self.value_size,
            self.max_entries,
            self.flags,
        ]
        .into_iter()
        .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
}
