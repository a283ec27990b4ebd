//! What a `pipeline` corpus reaches: every input of the directories given
//! run through the lab (`xvs_fuzz::director::run`, checks included), the
//! verdicts counted by kind and reason.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example verdicts -- fuzz/corpus/pipeline [DIR...]`

use std::collections::BTreeMap;

fn main() {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut inputs = 0;
    for dir in std::env::args().skip(1) {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = entry.expect("a directory entry").path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            inputs += 1;
            for v in xvs_fuzz::director::run(&data) {
                *counts.entry(format!("{v:?}")).or_default() += 1;
            }
        }
    }
    println!("{inputs} inputs");
    for (v, n) in counts {
        println!("{n:>8}  {v}");
    }
}
