//! Codegen goldens: every case of `cases.rs` printed as IR and as verifier-style
//! disassembly, one snapshot per case.
//!
//! Update with `INSTA_UPDATE=always cargo test -p nubpf-ebpf --test golden` and review the
//! diff; CI never writes snapshots.

mod cases;

#[test]
fn goldens() {
    for (name, m) in cases::all() {
        let compiled = nubpf_ebpf::compile(&m).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut out = format!("{m}--- asm\n");
        for p in &compiled.programs {
            out.push_str(&p.disassemble(&compiled.maps));
        }
        insta::assert_snapshot!(name.as_str(), out);
    }
}

#[test]
fn compiling_twice_gives_identical_objects() {
    for (name, m) in cases::all() {
        let a = nubpf_ebpf::compile(&m).unwrap();
        let b = nubpf_ebpf::compile(&m).unwrap();
        assert_eq!(a.object, b.object, "{name}");
    }
}
