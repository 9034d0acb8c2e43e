//! The objects codegen writes are what aya accepts: parsed here by aya-obj (the parser aya
//! itself uses), without a kernel. The kernel's own verdict is in `kernel.rs`.

#[path = "../ebpf/tests/cases.rs"]
mod cases;
mod common;

use std::collections::BTreeSet;

use aya_obj::Object;

#[test]
fn aya_parses_every_case_with_its_programs_and_maps() {
    for (name, module) in cases::all() {
        let compiled = nubpf_ebpf::compile(&module).unwrap();
        let obj = Object::parse(&compiled.object).unwrap_or_else(|e| panic!("{name}: {e}"));

        let programs: BTreeSet<&str> = obj.programs.keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = compiled.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(programs, expected, "{name}");
        for p in &compiled.programs {
            let function = obj
                .functions
                .get(&obj.programs[&p.name].function_key())
                .unwrap_or_else(|| panic!("{name}: no function for {}", p.name));
            assert_eq!(function.instructions.len(), p.code.insns.len(), "{name}");
        }

        let maps: BTreeSet<&str> = obj.maps.keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = compiled.maps.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(maps, expected, "{name}");
        for def in &compiled.maps {
            let map = &obj.maps[&def.name];
            assert_eq!(map.map_type(), def.kind.type_id(), "{name}/{}", def.name);
            assert_eq!(map.key_size(), def.key_size, "{name}/{}", def.name);
            assert_eq!(map.value_size(), def.value_size, "{name}/{}", def.name);
            assert_eq!(map.max_entries(), def.max_entries, "{name}/{}", def.name);
        }
    }
}

#[test]
fn two_programs_share_one_ring_buffer() {
    let (_, module) = cases::all()
        .into_iter()
        .find(|(n, _)| n == "two_probes")
        .unwrap();
    let compiled = nubpf_ebpf::compile(&module).unwrap();
    assert_eq!(compiled.programs.len(), 2);
    assert_eq!(
        compiled
            .maps
            .iter()
            .filter(|m| m.name == nubpf_ebpf::codegen::EVENTS_MAP)
            .count(),
        1
    );
    let obj = Object::parse(&compiled.object).unwrap();
    assert_eq!(obj.programs.len(), 2);
    // Both programs reference the same map symbol.
    let refs: Vec<_> = compiled
        .programs
        .iter()
        .map(|p| p.code.map_refs.iter().map(|(_, m)| *m).min())
        .collect();
    assert_eq!(refs[0], refs[1]);
}

#[test]
fn every_map_kind_is_written_as_aya_reads_it() {
    let (object, maps) = common::every_map_kind_object();
    let obj = Object::parse(&object).unwrap();
    assert_eq!(obj.maps.len(), maps.len());
    for def in &maps {
        let map = &obj.maps[&def.name];
        assert_eq!(map.map_type(), def.kind.type_id(), "{}", def.name);
        assert_eq!(
            (
                map.key_size(),
                map.value_size(),
                map.max_entries(),
                map.map_flags()
            ),
            (def.key_size, def.value_size, def.max_entries, def.flags),
            "{}",
            def.name
        );
    }
}
