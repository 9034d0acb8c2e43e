//! A reader for the kernel's BTF (`/sys/kernel/btf/vmlinux`): function prototypes and struct
//! layouts, enough to type kprobe / fentry arguments and follow pointers into struct fields.
//!
//! Pure: it parses bytes it is handed. Types are decoded on demand from the raw type section;
//! only an index of type offsets and of function names is built up front.

use std::collections::HashMap;

/// Why BTF bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    /// The data does not start with a BTF header.
    #[error("not BTF data (bad magic or header)")]
    BadHeader,
    /// A type record runs past the end of the type section.
    #[error("BTF type section is truncated")]
    Truncated,
    /// A type record has a kind this reader does not know.
    #[error("unknown BTF kind {0}")]
    UnknownKind(u32),
}

const MAGIC: u16 = 0xeb9f;

/// BTF kinds.
pub mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// A type id (0 is `void`).
pub type TypeId = u32;

/// Parsed BTF: raw sections plus an index.
pub struct Btf {
    types: Vec<u8>,
    strings: Vec<u8>,
    /// Byte offset of each type's record in `types`; index 0 (void) is unused.
    offsets: Vec<u32>,
    functions: HashMap<String, TypeId>,
    /// `btf_trace_<name>` typedefs: the prototypes of raw tracepoints.
    raw_tracepoints: HashMap<String, TypeId>,
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("types", &(self.offsets.len() - 1))
            .field("functions", &self.functions.len())
            .finish()
    }
}

/// One type record, decoded.
#[derive(Clone, Copy, Debug)]
struct Header {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    size_or_type: u32,
    /// Offset of the kind-specific data after the 12-byte header.
    data: usize,
}

/// What a type resolves to, with typedefs and qualifiers stripped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    Void,
    Int {
        bytes: u32,
        signed: bool,
        is_char: bool,
        is_bool: bool,
    },
    Ptr {
        target: TypeId,
    },
    Array {
        elem: TypeId,
        len: u32,
    },
    Struct {
        size: u32,
        union: bool,
    },
    Enum {
        bytes: u32,
        signed: bool,
    },
    FuncProto,
    Float {
        bytes: u32,
    },
    Fwd,
    Other,
}

/// A struct or union member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub ty: TypeId,
    /// Offset in bits from the start of the struct.
    pub bit_offset: u32,
    /// Bitfield width, 0 when not a bitfield.
    pub bit_size: u32,
}

/// A function parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub ty: TypeId,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

impl Btf {
    /// Parses BTF bytes (little-endian, as the running kernel exposes them).
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        let magic = u16::from_le_bytes([
            *data.first().ok_or(BtfError::BadHeader)?,
            *data.get(1).ok_or(BtfError::BadHeader)?,
        ]);
        if magic != MAGIC {
            return Err(BtfError::BadHeader);
        }
        let field = |i: usize| u32_at(data, 4 + 4 * i).ok_or(BtfError::BadHeader);
        let hdr_len = field(0)? as usize;
        let (type_off, type_len, str_off, str_len) = (
            field(1)? as usize,
            field(2)? as usize,
            field(3)? as usize,
            field(4)? as usize,
        );
        let types = data
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or(BtfError::BadHeader)?
            .to_vec();
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or(BtfError::BadHeader)?
            .to_vec();
        let mut btf = Btf {
            types,
            strings,
            offsets: vec![0],
            functions: HashMap::new(),
            raw_tracepoints: HashMap::new(),
        };
        let mut off = 0usize;
        while off < btf.types.len() {
            btf.offsets.push(off as u32);
            let h = btf.header_at(off).ok_or(BtfError::Truncated)?;
            let extra = match h.kind {
                kind::INT | kind::VAR | kind::DECL_TAG => 4,
                kind::PTR
                | kind::FWD
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPE_TAG => 0,
                kind::ARRAY => 12,
                kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * h.vlen as usize,
                kind::ENUM | kind::FUNC_PROTO => 8 * h.vlen as usize,
                other => return Err(BtfError::UnknownKind(other)),
            };
            let id = btf.offsets.len() as u32 - 1;
            if h.kind == kind::FUNC {
                let name = btf.name(h.name_off).to_string();
                btf.functions.entry(name).or_insert(id);
            } else if h.kind == kind::TYPEDEF
                && let Some(tp) = btf.name(h.name_off).strip_prefix("btf_trace_")
            {
                btf.raw_tracepoints.insert(tp.to_string(), id);
            }
            off = h.data + extra;
            if off > btf.types.len() {
                return Err(BtfError::Truncated);
            }
        }
        Ok(btf)
    }

    fn header_at(&self, off: usize) -> Option<Header> {
        let info = u32_at(&self.types, off + 4)?;
        Some(Header {
            name_off: u32_at(&self.types, off)?,
            kind: (info >> 24) & 0x1f,
            vlen: info & 0xffff,
            kind_flag: info >> 31 == 1,
            size_or_type: u32_at(&self.types, off + 8)?,
            data: off + 12,
        })
    }

    fn header(&self, id: TypeId) -> Option<Header> {
        let off = *self.offsets.get(id as usize)? as usize;
        if id == 0 {
            return None;
        }
        self.header_at(off)
    }

    fn name(&self, off: u32) -> &str {
        let start = off as usize;
        let Some(rest) = self.strings.get(start..) else {
            return "";
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    /// The name of a type (empty for anonymous ones).
    pub fn type_name(&self, id: TypeId) -> &str {
        self.header(id).map_or("", |h| self.name(h.name_off))
    }

    pub fn function_names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }

    pub fn has_function(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }

    /// The parameters and return type of kernel function `name`.
    pub fn function(&self, name: &str) -> Option<(Vec<Param>, TypeId)> {
        let func = self.header(*self.functions.get(name)?)?;
        self.proto(func.size_or_type)
    }

    /// The arguments of raw tracepoint `name` (from its `btf_trace_<name>` typedef), without
    /// the leading `void *` context argument the typedef carries.
    pub fn raw_tracepoint(&self, name: &str) -> Option<Vec<Param>> {
        let typedef = self.header(*self.raw_tracepoints.get(name)?)?;
        let ptr = self.header(typedef.size_or_type)?;
        let (mut params, _) = self.proto(ptr.size_or_type)?;
        if !params.is_empty() {
            params.remove(0);
        }
        Some(params)
    }

    pub fn raw_tracepoint_names(&self) -> impl Iterator<Item = &str> {
        self.raw_tracepoints.keys().map(String::as_str)
    }

    fn proto(&self, id: TypeId) -> Option<(Vec<Param>, TypeId)> {
        let proto = self.header(id)?;
        if proto.kind != kind::FUNC_PROTO {
            return None;
        }
        let params = (0..proto.vlen as usize)
            .map(|i| {
                let at = proto.data + 8 * i;
                Some(Param {
                    name: self.name(u32_at(&self.types, at)?).to_string(),
                    ty: u32_at(&self.types, at + 4)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some((params, proto.size_or_type))
    }

    /// Strips typedefs, qualifiers and type tags.
    pub fn strip(&self, mut id: TypeId) -> TypeId {
        for _ in 0..64 {
            match self.header(id) {
                Some(h)
                    if matches!(
                        h.kind,
                        kind::TYPEDEF
                            | kind::VOLATILE
                            | kind::CONST
                            | kind::RESTRICT
                            | kind::TYPE_TAG
                    ) =>
                {
                    id = h.size_or_type
                }
                _ => return id,
            }
        }
        id
    }

    /// What `id` is, after stripping typedefs and qualifiers.
    pub fn resolve(&self, id: TypeId) -> Resolved {
        let id = self.strip(id);
        let Some(h) = self.header(id) else {
            return Resolved::Void;
        };
        match h.kind {
            kind::INT => {
                let enc = u32_at(&self.types, h.data).unwrap_or(0);
                let encoding = (enc >> 24) & 0xf;
                Resolved::Int {
                    bytes: h.size_or_type,
                    signed: encoding & 1 != 0,
                    is_char: encoding & 2 != 0 || self.name(h.name_off).contains("char"),
                    is_bool: encoding & 4 != 0,
                }
            }
            kind::PTR => Resolved::Ptr {
                target: h.size_or_type,
            },
            kind::ARRAY => Resolved::Array {
                elem: u32_at(&self.types, h.data).unwrap_or(0),
                len: u32_at(&self.types, h.data + 8).unwrap_or(0),
            },
            kind::STRUCT | kind::UNION => Resolved::Struct {
                size: h.size_or_type,
                union: h.kind == kind::UNION,
            },
            kind::ENUM | kind::ENUM64 => Resolved::Enum {
                bytes: h.size_or_type,
                signed: h.kind_flag,
            },
            kind::FUNC_PROTO => Resolved::FuncProto,
            kind::FLOAT => Resolved::Float {
                bytes: h.size_or_type,
            },
            kind::FWD => Resolved::Fwd,
            _ => Resolved::Other,
        }
    }

    /// The members of a struct or union, or `None` for other types.
    pub fn members(&self, id: TypeId) -> Option<Vec<Member>> {
        let h = self.header(self.strip(id))?;
        if h.kind != kind::STRUCT && h.kind != kind::UNION {
            return None;
        }
        (0..h.vlen as usize)
            .map(|i| {
                let at = h.data + 12 * i;
                let raw = u32_at(&self.types, at + 8)?;
                let (bit_offset, bit_size) = if h.kind_flag {
                    (raw & 0xff_ffff, raw >> 24)
                } else {
                    (raw, 0)
                };
                Some(Member {
                    name: self.name(u32_at(&self.types, at)?).to_string(),
                    ty: u32_at(&self.types, at + 4)?,
                    bit_offset,
                    bit_size,
                })
            })
            .collect()
    }

    /// Finds member `name` of struct `id`, looking through anonymous struct and union
    /// members as C does. Returns the member with its offset from the start of `id`.
    pub fn member(&self, id: TypeId, name: &str) -> Option<Member> {
        for m in self.members(id)? {
            if m.name == name {
                return Some(m);
            }
            if m.name.is_empty()
                && let Some(mut inner) = self.member(m.ty, name)
            {
                inner.bit_offset += m.bit_offset;
                return Some(inner);
            }
        }
        None
    }

    /// The size in bytes of a type.
    pub fn size_of(&self, id: TypeId) -> Option<u32> {
        match self.resolve(id) {
            Resolved::Int { bytes, .. } | Resolved::Enum { bytes, .. } => Some(bytes),
            Resolved::Float { bytes } => Some(bytes),
            Resolved::Ptr { .. } => Some(8),
            Resolved::Struct { size, .. } => Some(size),
            Resolved::Array { elem, len } => Some(self.size_of(elem)? * len),
            _ => None,
        }
    }

    /// C-like spelling of a type, e.g. `const char *`, `struct file *`, `unsigned int`.
    pub fn describe(&self, id: TypeId) -> String {
        self.describe_depth(id, 0)
    }

    fn describe_depth(&self, id: TypeId, depth: u32) -> String {
        if depth > 16 {
            return "...".into();
        }
        let Some(h) = self.header(id) else {
            return "void".into();
        };
        let name = self.name(h.name_off);
        match h.kind {
            kind::PTR => format!("{} *", self.describe_depth(h.size_or_type, depth + 1)),
            kind::CONST => format!("const {}", self.describe_depth(h.size_or_type, depth + 1)),
            kind::VOLATILE => {
                format!(
                    "volatile {}",
                    self.describe_depth(h.size_or_type, depth + 1)
                )
            }
            kind::RESTRICT | kind::TYPE_TAG => self.describe_depth(h.size_or_type, depth + 1),
            kind::STRUCT => format!("struct {name}"),
            kind::UNION => format!("union {name}"),
            kind::ENUM | kind::ENUM64 => format!("enum {name}"),
            kind::ARRAY => {
                let elem = u32_at(&self.types, h.data).unwrap_or(0);
                let len = u32_at(&self.types, h.data + 8).unwrap_or(0);
                format!("{}[{len}]", self.describe_depth(elem, depth + 1))
            }
            kind::FUNC_PROTO => "function".into(),
            _ if name.is_empty() => "?".into(),
            _ => name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny hand-made BTF: `int`, `char`, `const char *`, `struct s { int a; char *name; }`,
    /// and `int f(const char *path, struct s *obj)`.
    fn sample() -> Vec<u8> {
        let mut strings = b"\0int\0char\0s\0a\0name\0f\0path\0obj\0".to_vec();
        strings.push(0);
        let off = |s: &str| {
            let needle = format!("\0{s}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut types = Vec::new();
        let mut put = |vals: &[u32]| {
            for v in vals {
                types.extend_from_slice(&v.to_le_bytes());
            }
        };
        let info = |kind: u32, vlen: u32| (kind << 24) | vlen;
        put(&[off("int"), info(kind::INT, 0), 4, (1 << 24) | 32]); // 1: int
        put(&[off("char"), info(kind::INT, 0), 1, (2 << 24) | 8]); // 2: char
        put(&[0, info(kind::CONST, 0), 2]); // 3: const char
        put(&[0, info(kind::PTR, 0), 3]); // 4: const char *
        put(&[off("s"), info(kind::STRUCT, 2), 16]); // 5: struct s
        put(&[off("a"), 1, 0]);
        put(&[off("name"), 4, 64]);
        put(&[0, info(kind::PTR, 0), 5]); // 6: struct s *
        put(&[0, info(kind::FUNC_PROTO, 2), 1]); // 7: proto
        put(&[off("path"), 4]);
        put(&[off("obj"), 6]);
        put(&[off("f"), info(kind::FUNC, 0), 7]); // 8: f
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn reads_prototypes_and_members() {
        let btf = Btf::parse(&sample()).unwrap();
        let (params, ret) = btf.function("f").unwrap();
        assert_eq!(
            params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["path", "obj"]
        );
        assert_eq!(btf.describe(params[0].ty), "const char *");
        assert_eq!(btf.describe(params[1].ty), "struct s *");
        assert_eq!(
            btf.resolve(ret),
            Resolved::Int {
                bytes: 4,
                signed: true,
                is_char: false,
                is_bool: false
            }
        );
        let Resolved::Ptr { target } = btf.resolve(params[1].ty) else {
            panic!()
        };
        let name = btf.member(target, "name").unwrap();
        assert_eq!(name.bit_offset, 64);
        assert_eq!(btf.size_of(target), Some(16));
        assert!(btf.member(target, "nope").is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Btf::parse(b"nope").unwrap_err(), BtfError::BadHeader);
        let mut truncated = sample();
        truncated[8..12].copy_from_slice(&1000u32.to_le_bytes());
        assert!(Btf::parse(&truncated).is_err());
    }
}
