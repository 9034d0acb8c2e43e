//! The ELF writer: programs, maps and license in the relocatable object aya 0.14 loads.
//!
//! What aya needs (verified in `../shared/KERNEL.md`): EM_BPF, one executable section per
//! program with one FUNC symbol of exactly the code's size, the legacy `maps` section with
//! one OBJECT symbol per 20-byte `bpf_map_def`, `R_BPF_64_64` relocations against those
//! symbols, and a `license` section saying GPL.

use object::write::{Object, Relocation, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope,
};

use crate::insn::{Insn, encode_all};
use crate::maps::{MapDef, MapId};

/// `R_BPF_64_64`: a 64-bit immediate (`ld_imm64`) relocation.
const R_BPF_64_64: u32 = 1;

/// One program to write.
pub struct ObjectProgram<'a> {
    pub name: &'a str,
    pub section: &'a str,
    pub insns: &'a [Insn],
    pub map_refs: &'a [(usize, MapId)],
}

/// Writes the object. Identical inputs give byte-identical output.
pub fn write(programs: &[ObjectProgram<'_>], maps: &[MapDef]) -> Vec<u8> {
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);

    let license = obj.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    obj.append_section_data(license, b"GPL\0", 1);

    let mut map_symbols = Vec::with_capacity(maps.len());
    if !maps.is_empty() {
        let section = obj.add_section(Vec::new(), b"maps".to_vec(), SectionKind::Data);
        for map in maps {
            let offset = obj.append_section_data(section, &map.encode(), 4);
            map_symbols.push(obj.add_symbol(Symbol {
                name: map.name.as_bytes().to_vec(),
                value: offset,
                size: 20,
                kind: SymbolKind::Data,
                scope: SymbolScope::Dynamic,
                weak: false,
                section: SymbolSection::Section(section),
                flags: SymbolFlags::None,
            }));
        }
    }

    for program in programs {
        let code = encode_all(program.insns);
        let section = obj.add_section(
            Vec::new(),
            program.section.as_bytes().to_vec(),
            SectionKind::Text,
        );
        obj.append_section_data(section, &code, 8);
        obj.add_symbol(Symbol {
            name: program.name.as_bytes().to_vec(),
            value: 0,
            size: code.len() as u64,
            kind: SymbolKind::Text,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: SymbolSection::Section(section),
            flags: SymbolFlags::None,
        });
        for &(insn, map) in program.map_refs {
            // A map id always comes from the same module's map list.
            let symbol = map_symbols[map.0 as usize];
            obj.add_relocation(
                section,
                Relocation {
                    offset: insn as u64 * 8,
                    symbol,
                    addend: 0,
                    flags: RelocationFlags::Elf {
                        r_type: R_BPF_64_64,
                    },
                },
            )
            .expect("an ELF relocation with explicit flags is always accepted");
        }
    }
    obj.write()
        .expect("writing an in-memory ELF object cannot fail")
}
