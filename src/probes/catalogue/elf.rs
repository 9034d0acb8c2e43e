//! Function symbols of user-space binaries (static `.symtab` and dynamic `.dynsym`), for
//! checking uprobe targets and completing their names.
//!
//! Pure: parses bytes it is handed.

use object::{Object, ObjectSymbol, SymbolKind};

/// The function symbols of one ELF file, sorted and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfSymbols {
    pub functions: Vec<String>,
}

impl ElfSymbols {
    /// Reads the function symbols of an ELF file. Version suffixes (`@@GLIBC_2.2.5`) are cut.
    pub fn parse(data: &[u8]) -> Result<ElfSymbols, object::Error> {
        let file = object::File::parse(data)?;
        let mut functions: Vec<String> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
            .filter_map(|s| s.name().ok())
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| !n.is_empty())
            .collect();
        functions.sort();
        functions.dedup();
        Ok(ElfSymbols { functions })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.functions
            .binary_search_by(|f| f.as_str().cmp(name))
            .is_ok()
    }
}
