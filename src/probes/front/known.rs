//! Signatures of well-known user-space functions, for binaries without debug info.
//!
//! A uprobe only sees registers, so `$ctx.arg0` is all an unknown function offers. For the
//! functions below, named fields are available instead. A field marked `at_return` is only
//! known when the function returns (e.g. the line `readline` read): a `bpf_uprobe` that uses
//! it attaches at the function's return instead, and says so.

/// Where a known field's value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnownValue {
    /// Argument `n`, an integer.
    Int(u8),
    /// Argument `n`, a pointer to a NUL-terminated string in the process.
    Str(u8),
    /// The return value, an integer.
    RetInt,
    /// The return value, a pointer to a string.
    RetStr,
}

impl KnownValue {
    pub fn at_return(self) -> bool {
        matches!(self, KnownValue::RetInt | KnownValue::RetStr)
    }
}

/// One well-known function.
#[derive(Debug)]
pub struct KnownFunction {
    /// Matches binaries whose file name starts with this (`bash`, `libc.so`).
    pub binary_prefix: &'static str,
    pub symbol: &'static str,
    pub fields: &'static [(&'static str, KnownValue)],
}

/// The table. Keep it small and certain: every entry is a stable, documented ABI.
pub const KNOWN: &[KnownFunction] = &[
    KnownFunction {
        binary_prefix: "bash",
        symbol: "readline",
        fields: &[("prompt", KnownValue::Str(0)), ("line", KnownValue::RetStr)],
    },
    KnownFunction {
        binary_prefix: "libc.so",
        symbol: "getenv",
        fields: &[("name", KnownValue::Str(0)), ("value", KnownValue::RetStr)],
    },
    KnownFunction {
        binary_prefix: "libc.so",
        symbol: "malloc",
        fields: &[("size", KnownValue::Int(0)), ("ptr", KnownValue::RetInt)],
    },
    KnownFunction {
        binary_prefix: "libc.so",
        symbol: "free",
        fields: &[("ptr", KnownValue::Int(0))],
    },
    KnownFunction {
        binary_prefix: "libc.so",
        symbol: "open",
        fields: &[
            ("path", KnownValue::Str(0)),
            ("flags", KnownValue::Int(1)),
            ("fd", KnownValue::RetInt),
        ],
    },
    KnownFunction {
        binary_prefix: "libc.so",
        symbol: "fopen",
        fields: &[("path", KnownValue::Str(0)), ("mode", KnownValue::Str(1))],
    },
    KnownFunction {
        binary_prefix: "libc.so",
        symbol: "system",
        fields: &[
            ("command", KnownValue::Str(0)),
            ("status", KnownValue::RetInt),
        ],
    },
];

/// The known signature of `symbol` in `binary`, if any.
pub fn lookup(binary: &str, symbol: &str) -> Option<&'static KnownFunction> {
    let file = binary.rsplit('/').next().unwrap_or(binary);
    KNOWN
        .iter()
        .find(|k| k.symbol == symbol && file.starts_with(k.binary_prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_file_name_prefix() {
        assert_eq!(lookup("/bin/bash", "readline").unwrap().symbol, "readline");
        assert_eq!(
            lookup("/usr/lib/x86_64-linux-gnu/libc.so.6", "getenv")
                .unwrap()
                .symbol,
            "getenv"
        );
        assert!(lookup("/bin/zsh", "readline").is_none());
    }
}
