//! `nubpf-tui list`: the catalogue of probe targets (tracepoints with their fields, kernel
//! functions with their parameters, function symbols of a binary), filtered by a wildcard
//! pattern. The workbench's completion reads the same catalogue.

use std::io::Write;
use std::path::Path;

use crate::probes::catalogue::{Catalogue, Lookup};

/// What to list.
#[derive(Clone, Debug)]
pub enum ListWhat {
    Tracepoints,
    Kfuncs,
    Uprobes(String),
}

/// One catalogue entry: a name and, with `--args`, its fields or parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// `(name, type)` pairs.
    pub args: Vec<(String, String)>,
}

/// `*` matches any run of characters, `?` one character; no pattern matches everything.
/// A pattern without wildcards matches names containing it.
pub fn matches(pattern: Option<&str>, name: &str) -> bool {
    let Some(pattern) = pattern else {
        return true;
    };
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    fn glob(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], n) || (!n.is_empty() && glob(p, &n[1..])),
            (Some(b'?'), Some(_)) => glob(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &n[1..]),
            _ => false,
        }
    }
    // `sys_enter_open*` also matches the name part of `syscalls:sys_enter_openat`.
    glob(pattern.as_bytes(), name.as_bytes())
        || name
            .split_once(':')
            .is_some_and(|(_, short)| glob(pattern.as_bytes(), short.as_bytes()))
}

/// Collects the entries; errors are sentences for the user.
pub fn entries(
    catalogue: &Catalogue,
    what: &ListWhat,
    pattern: Option<&str>,
    with_args: bool,
) -> Result<Vec<Entry>, String> {
    match what {
        ListWhat::Tracepoints => {
            let names = catalogue.tracepoint_names()?;
            Ok(names
                .iter()
                .filter(|n| matches(pattern, n))
                .map(|n| {
                    let args = if with_args {
                        let (cat, name) = n.split_once(':').unwrap_or(("", n));
                        match catalogue.tracepoint(cat, name) {
                            Lookup::Found(f) => f
                                .fields
                                .iter()
                                .map(|f| (f.name.clone(), f.c_type.clone()))
                                .collect(),
                            _ => Vec::new(),
                        }
                    } else {
                        Vec::new()
                    };
                    Entry {
                        name: n.clone(),
                        args,
                    }
                })
                .collect())
        }
        ListWhat::Kfuncs => {
            let btf = catalogue.btf()?;
            let mut names: Vec<&str> = btf
                .function_names()
                .filter(|n| matches(pattern, n))
                .collect();
            names.sort_unstable();
            Ok(names
                .into_iter()
                .map(|n| Entry {
                    name: n.to_string(),
                    args: if with_args {
                        btf.function(n)
                            .map(|(params, _)| {
                                params
                                    .iter()
                                    .map(|p| (p.name.clone(), btf.describe(p.ty)))
                                    .collect()
                            })
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                })
                .collect())
        }
        ListWhat::Uprobes(binary) => {
            let symbols = catalogue.elf_symbols(Path::new(binary))?;
            Ok(symbols
                .functions
                .iter()
                .filter(|n| matches(pattern, n))
                .map(|n| Entry {
                    name: n.clone(),
                    args: Vec::new(),
                })
                .collect())
        }
    }
}

/// Prints entries as lines (`name(arg: type, ...)` with `--args`) or as a JSON array.
pub fn print(
    out: &mut impl Write,
    entries: &[Entry],
    json: bool,
    with_args: bool,
) -> std::io::Result<()> {
    if json {
        out.write_all(b"[")?;
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(b"{\"name\":")?;
            super::values::write_json_str(out, &e.name)?;
            if with_args {
                out.write_all(b",\"args\":[")?;
                for (j, (name, ty)) in e.args.iter().enumerate() {
                    if j > 0 {
                        out.write_all(b",")?;
                    }
                    out.write_all(b"{\"name\":")?;
                    super::values::write_json_str(out, name)?;
                    out.write_all(b",\"type\":")?;
                    super::values::write_json_str(out, ty)?;
                    out.write_all(b"}")?;
                }
                out.write_all(b"]")?;
            }
            out.write_all(b"}")?;
        }
        return out.write_all(b"]\n");
    }
    for e in entries {
        if with_args {
            let args: Vec<String> = e.args.iter().map(|(n, t)| format!("{n}: {t}")).collect();
            writeln!(out, "{}({})", e.name, args.join(", "))?;
        } else {
            writeln!(out, "{}", e.name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        assert!(matches(
            Some("syscalls:sys_enter_open*"),
            "syscalls:sys_enter_openat"
        ));
        assert!(matches(Some("*openat"), "syscalls:sys_enter_openat"));
        assert!(matches(Some("sys_enter_?pen"), "sys_enter_open"));
        assert!(matches(
            Some("sys_enter_open*"),
            "syscalls:sys_enter_openat"
        ));
        assert!(!matches(Some("sys_exit*"), "syscalls:sys_enter_openat"));
        assert!(matches(Some("openat"), "syscalls:sys_enter_openat"));
        assert!(matches(None, "x"));
    }
}
