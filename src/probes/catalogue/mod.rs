//! The catalogue: what the running system offers to probe (tracepoints and their formats,
//! kernel functions and their prototypes from BTF, function symbols of binaries), read
//! lazily and cached.
//!
//! This is the only IO the compile path does. Each fact is read once; later compiles (every
//! keystroke in the editor) hit the caches. What cannot be read is remembered as a plain
//! sentence for diagnostics (e.g. "tracefs is not mounted").

pub mod btf;
pub mod elf;
pub mod tracefs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub use btf::Btf;
pub use elf::ElfSymbols;
pub use tracefs::{Field, FieldKind, Format};

/// Where tracefs is normally mounted.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// The running kernel's BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Why a catalogue lookup found nothing: the thing does not exist, or the source to look
/// it up in is unavailable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<T> {
    Found(T),
    /// The source was read and has no such entry.
    Missing,
    /// The source cannot be read; the sentence says why.
    Unavailable(String),
}

/// Cached knowledge about the running system.
pub struct Catalogue {
    tracefs: PathBuf,
    btf_path: PathBuf,
    formats: Mutex<HashMap<String, Lookup<Arc<Format>>>>,
    tracepoints: OnceLock<Result<Arc<Vec<String>>, String>>,
    btf: OnceLock<Result<Arc<Btf>, String>>,
    elfs: Mutex<HashMap<PathBuf, Result<Arc<ElfSymbols>, String>>>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("tracefs", &self.tracefs)
            .field("btf", &self.btf_path)
            .finish_non_exhaustive()
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue::system()
    }
}

impl Catalogue {
    /// The running system's catalogue.
    pub fn system() -> Catalogue {
        Catalogue::with_paths(PathBuf::from(TRACEFS), PathBuf::from(VMLINUX_BTF))
    }

    /// A catalogue reading tracefs and BTF from other places (tests).
    pub fn with_paths(tracefs: PathBuf, btf: PathBuf) -> Catalogue {
        Catalogue {
            tracefs,
            btf_path: btf,
            formats: Mutex::new(HashMap::new()),
            tracepoints: OnceLock::new(),
            btf: OnceLock::new(),
            elfs: Mutex::new(HashMap::new()),
        }
    }

    fn tracefs_problem(&self) -> Option<String> {
        if self.tracefs.join("events").is_dir() {
            return None;
        }
        Some(if self.tracefs.is_dir() {
            format!(
                "tracefs is not mounted at {} (mount it with `sudo mount -t tracefs tracefs {}`)",
                self.tracefs.display(),
                self.tracefs.display()
            )
        } else {
            format!("{} does not exist", self.tracefs.display())
        })
    }

    /// The format of tracepoint `category:name`.
    pub fn tracepoint(&self, category: &str, name: &str) -> Lookup<Arc<Format>> {
        let key = format!("{category}:{name}");
        let mut formats = self.formats.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = formats.get(&key) {
            return found.clone();
        }
        let result = match self.tracefs_problem() {
            Some(problem) => Lookup::Unavailable(problem),
            None => {
                let path = self
                    .tracefs
                    .join("events")
                    .join(category)
                    .join(name)
                    .join("format");
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        Lookup::Found(Arc::new(tracefs::parse_format(category, name, &text)))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Lookup::Missing,
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        Lookup::Unavailable(format!(
                            "{} is not readable (tracefs needs root)",
                            path.display()
                        ))
                    }
                    Err(e) => Lookup::Unavailable(format!("{}: {e}", path.display())),
                }
            }
        };
        formats.insert(key, result.clone());
        result
    }

    /// Every tracepoint as `category:name`, sorted.
    pub fn tracepoint_names(&self) -> Result<Arc<Vec<String>>, String> {
        self.tracepoints
            .get_or_init(|| {
                if let Some(problem) = self.tracefs_problem() {
                    return Err(problem);
                }
                let events = self.tracefs.join("events");
                let mut names = Vec::new();
                let categories =
                    std::fs::read_dir(&events).map_err(|e| format!("{}: {e}", events.display()))?;
                for category in categories.flatten() {
                    let Ok(entries) = std::fs::read_dir(category.path()) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        if entry.path().join("format").exists() {
                            names.push(format!(
                                "{}:{}",
                                category.file_name().to_string_lossy(),
                                entry.file_name().to_string_lossy()
                            ));
                        }
                    }
                }
                names.sort();
                Ok(Arc::new(names))
            })
            .clone()
    }

    /// The kernel's BTF, parsed once.
    pub fn btf(&self) -> Result<Arc<Btf>, String> {
        self.btf
            .get_or_init(|| {
                let data = std::fs::read(&self.btf_path).map_err(|e| {
                    format!(
                        "kernel BTF is not readable at {}: {e}",
                        self.btf_path.display()
                    )
                })?;
                Btf::parse(&data)
                    .map(Arc::new)
                    .map_err(|e| format!("{}: {e}", self.btf_path.display()))
            })
            .clone()
    }

    /// The function symbols of binary `path`.
    pub fn elf_symbols(&self, path: &Path) -> Result<Arc<ElfSymbols>, String> {
        let mut elfs = self.elfs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = elfs.get(path) {
            return found.clone();
        }
        let result = std::fs::read(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|data| {
                ElfSymbols::parse(&data)
                    .map(Arc::new)
                    .map_err(|e| format!("{} is not an ELF binary: {e}", path.display()))
            });
        elfs.insert(path.to_path_buf(), result.clone());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::front;

    /// A directory for tracefs that is not mounted (empty) or missing; removed on drop.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn an_unmounted_or_missing_tracefs_is_said_plainly_with_how_to_mount_it() {
        let dir =
            Scratch(std::env::temp_dir().join(format!("nubpf-notracefs-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let source = r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| count }"#;
        let catalogue = Catalogue::with_paths(dir.0.clone(), PathBuf::from(VMLINUX_BTF));
        let (script, diagnostics) = front::compile(source, &catalogue);
        assert!(script.is_none());
        let said = format!("{diagnostics:?}");
        assert!(
            said.contains(&format!(
                "tracefs is not mounted at {d} (mount it with `sudo mount -t tracefs tracefs {d}`)",
                d = dir.0.display()
            )),
            "{said}"
        );
        let missing = dir.0.join("nowhere");
        let catalogue = Catalogue::with_paths(missing.clone(), PathBuf::from(VMLINUX_BTF));
        let (_, diagnostics) = front::compile(source, &catalogue);
        let said = format!("{diagnostics:?}");
        assert!(
            said.contains(&format!("{} does not exist", missing.display())),
            "{said}"
        );
    }
}
