//! Property test of the compile path: random and mutated sources never panic it and never
//! produce an internal error (which would be a compiler bug). Deterministic: a fixed-seed
//! generator mutates the ok corpus, so a failure reproduces.

use std::path::Path;

use nubpf_tui::probes::catalogue::Catalogue;
use nubpf_tui::probes::front::{self, diagnostic};

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "|",
    "$",
    "$ctx",
    "$e",
    ".",
    ",",
    ":",
    "\"",
    "'",
    " ",
    "\n",
    "emit",
    "count",
    "sum",
    "hist",
    "lhist",
    "min",
    "max",
    "avg",
    "--by",
    "--as",
    "let",
    "mut",
    "if",
    "else",
    "return",
    "not",
    "and",
    "or",
    "xor",
    "==",
    "!=",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "//",
    "mod",
    "bit-and",
    "bit-shl",
    "in",
    "starts-with",
    "ends-with",
    "=~",
    "0",
    "-1",
    "9223372036854775807",
    "1sec",
    "1mb",
    "true",
    "\"x\"",
    "$ctx.pid",
    "$ctx.comm",
    "$ctx.filename",
    "$ctx.file.f_flags",
    "$ctx.args.x",
    "$ctx.retval",
    "emit(",
    "count()",
    "bpf_kprobe",
    "bpf_tracepoint",
    "bpf kprobe",
    "bpf_uprobe \"/bin/bash\" \"readline\"",
    "bpf_interval",
    "bpf_profile --hz",
    "--strlen",
    "def x [] {}",
    "$in",
    "where",
    "each",
    "{|x| $x}",
    "é",
    "\u{0}",
    "🙂",
];

fn mutate(rng: &mut Rng, src: &str) -> String {
    let mut chars: Vec<char> = src.chars().collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(5) {
            0 if !chars.is_empty() => {
                let end = (at + rng.below(8)).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            1 | 2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                chars.splice(at..at, token.chars());
            }
            3 if !chars.is_empty() => {
                let a = rng.below(chars.len());
                let b = rng.below(chars.len());
                chars.swap(a, b);
            }
            _ => {
                let start = rng.below(chars.len() + 1);
                let end = (start + rng.below(20)).min(chars.len());
                let piece: Vec<char> = chars[start..end].to_vec();
                chars.splice(at..at, piece);
            }
        }
    }
    chars.into_iter().collect()
}

fn check(catalogue: &Catalogue, source: &str) {
    let (_, diagnostics) = front::compile(source, catalogue);
    if let Some(d) = diagnostics.iter().find(|d| d.code == "nubpf::internal") {
        panic!(
            "internal error on input {source:?}:\n{}",
            diagnostic::render("fuzz.nu", source, std::slice::from_ref(d))
        );
    }
    for d in &diagnostics {
        assert!(
            d.span.start <= d.span.end && d.span.end as usize <= source.len(),
            "span {:?} outside the source {source:?}",
            d.span
        );
    }
}

#[test]
fn mutated_and_random_sources_never_break_the_compiler() {
    let catalogue = Catalogue::system();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/front");
    let mut corpus: Vec<String> = ["ok", "err"]
        .iter()
        .flat_map(|k| std::fs::read_dir(dir.join(k)).unwrap().flatten())
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    corpus.sort();
    // `NUBPF_FUZZ_SEED` and `NUBPF_FUZZ_ITERS` run other or longer searches locally.
    let seed = std::env::var("NUBPF_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_9876u64);
    let iterations = std::env::var("NUBPF_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500usize);
    let mut rng = Rng(seed | 1);
    for _ in 0..iterations {
        let base = &corpus[rng.below(corpus.len())];
        let source = mutate(&mut rng, base);
        check(&catalogue, &source);
    }
    // Pure noise made of language tokens.
    for _ in 0..300 {
        let n = rng.below(30);
        let source: String = (0..n)
            .map(|_| TOKENS[rng.below(TOKENS.len())])
            .collect::<Vec<_>>()
            .join(" ");
        check(&catalogue, &source);
    }
}
