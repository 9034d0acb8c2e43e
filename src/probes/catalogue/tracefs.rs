//! Tracepoint formats from tracefs (`events/<category>/<name>/format`): field names, C types,
//! offsets and sizes, classified into what a probe can read.
//!
//! Pure: `parse_format` takes the file's text; the catalogue does the reading.

/// How a tracepoint field is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// An integer of the field's size.
    Int { signed: bool },
    /// A pointer to characters: a string to read from (usually user) memory.
    CharPtr,
    /// Any other pointer, read as a `u64` address.
    Ptr,
    /// `__data_loc char[]`: a string stored after the fixed fields.
    DataLocStr,
    /// `char name[len]` inside the record.
    CharArray { len: u16 },
    /// Another fixed array; not readable as a value.
    Array { len: u16 },
}

/// One field of a tracepoint record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The C type as the format file spells it (`const char *`, `pid_t`).
    pub c_type: String,
    pub offset: u16,
    pub size: u16,
    pub kind: FieldKind,
}

/// A tracepoint's record layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pub category: String,
    pub name: String,
    /// Fields after the common header (`common_*` fields are not readable by programs).
    pub fields: Vec<Field>,
}

impl Format {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// C type names that are signed even where the format file says `signed:0` (the syscall
/// tracepoints store every argument as an unsigned long).
pub fn is_signed(c_type: &str) -> bool {
    let t = c_type.trim();
    if t.contains("unsigned") || t.starts_with('u') || t.starts_with("__u") {
        return false;
    }
    matches!(
        t,
        "int"
            | "long"
            | "short"
            | "long long"
            | "signed char"
            | "s8"
            | "s16"
            | "s32"
            | "s64"
            | "__s8"
            | "__s16"
            | "__s32"
            | "__s64"
            | "pid_t"
            | "ssize_t"
            | "loff_t"
            | "off_t"
            | "time64_t"
            | "ktime_t"
            | "clockid_t"
            | "key_serial_t"
            | "timer_t"
            | "mqd_t"
    )
}

/// Parses one `format` file. Fields whose line cannot be read are skipped.
pub fn parse_format(category: &str, name: &str, text: &str) -> Format {
    let fields = text
        .lines()
        .filter_map(|line| parse_field(line.trim()))
        .filter(|f| !f.name.starts_with("common_"))
        .collect();
    Format {
        category: category.to_string(),
        name: name.to_string(),
        fields,
    }
}

fn parse_field(line: &str) -> Option<Field> {
    let mut decl = None;
    let (mut offset, mut size, mut signed) = (None, None, false);
    for part in line.split(';') {
        let part = part.trim();
        if let Some(d) = part.strip_prefix("field:") {
            decl = Some(d.trim());
        } else if let Some(v) = part.strip_prefix("offset:") {
            offset = v.trim().parse::<u16>().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.trim().parse::<u16>().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = v.trim() == "1";
        }
    }
    let decl = decl?;
    let (offset, size) = (offset?, size?);
    if let Some(rest) = decl.strip_prefix("__data_loc ") {
        let name = rest.rsplit(' ').next()?.to_string();
        return Some(Field {
            name,
            c_type: rest.rsplit_once(' ')?.0.to_string(),
            offset,
            size,
            kind: FieldKind::DataLocStr,
        });
    }
    // `type name`, `type *name`, `type * name`, `type name[N]`.
    let split = decl.rfind([' ', '*'])?;
    let (c_type, mut name) = (decl[..=split].trim().to_string(), decl[split + 1..].trim());
    let mut array = None;
    if let Some((n, len)) = name.split_once('[') {
        array = len.trim_end_matches(']').parse::<u16>().ok();
        name = n;
    }
    let is_char = c_type.contains("char");
    let kind = match array {
        Some(len) if is_char => FieldKind::CharArray { len },
        Some(len) => FieldKind::Array { len },
        None if c_type.ends_with('*') && is_char => FieldKind::CharPtr,
        None if c_type.ends_with('*') => FieldKind::Ptr,
        None => FieldKind::Int {
            signed: signed || is_signed(&c_type),
        },
    };
    Some(Field {
        name: name.to_string(),
        c_type,
        offset,
        size,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAT: &str = "name: sys_enter_openat
ID: 782
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] path;\toffset:48;\tsize:4;\tsigned:0;
\tfield:char comm[16];\toffset:52;\tsize:16;\tsigned:0;
\tfield:u8 mac[6];\toffset:68;\tsize:6;\tsigned:0;
\tfield:struct file *file;\toffset:80;\tsize:8;\tsigned:0;

print fmt: \"dfd: 0x%08lx\", ((unsigned long)(REC->dfd))
";

    #[test]
    fn classifies_every_field_kind() {
        let f = parse_format("syscalls", "sys_enter_openat", OPENAT);
        let kinds: Vec<(&str, &FieldKind, u16, u16)> = f
            .fields
            .iter()
            .map(|f| (f.name.as_str(), &f.kind, f.offset, f.size))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("__syscall_nr", &FieldKind::Int { signed: true }, 8, 4),
                ("dfd", &FieldKind::Int { signed: true }, 16, 8),
                ("filename", &FieldKind::CharPtr, 24, 8),
                ("mode", &FieldKind::Int { signed: false }, 40, 8),
                ("path", &FieldKind::DataLocStr, 48, 4),
                ("comm", &FieldKind::CharArray { len: 16 }, 52, 16),
                ("mac", &FieldKind::Array { len: 6 }, 68, 6),
                ("file", &FieldKind::Ptr, 80, 8),
            ]
        );
        assert_eq!(f.field("filename").unwrap().c_type, "const char *");
    }
}
