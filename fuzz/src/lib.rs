//! Shared pieces of the xvs fuzz targets (`fuzz_targets/`): the director
//! the `pipeline` target runs frames through, the layout of its inputs,
//! the sync key, the splitting of bytes into an argv.
//!
//! The targets assert invariants, not only the absence of panics; each
//! target's file says which, and `docs/fuzzing.md` lists them all. The
//! seed corpus (`corpus/<target>/`) is written by `examples/seeds.rs`.

pub mod director;
pub mod input;
pub mod reference;

/// The key of the `sync_datagram` target's datagrams (32 bytes, as a
/// `--sync-key` file would hold).
pub const SYNC_KEY: &[u8; 32] = b"xvs fuzz sync key, 32 bytes long";

/// The words of an `xvsadm` command line in `data`: NUL-terminated words
/// when there is a NUL byte (the fuzzer can then put spaces in a word, or
/// give an empty one; a last word may lack its NUL), else the words
/// separated by white space. Bytes that are not UTF-8 become U+FFFD.
pub fn argv(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    if text.contains('\0') {
        let text = text.strip_suffix('\0').unwrap_or(&text);
        text.split('\0').map(str::to_owned).collect()
    } else {
        text.split_whitespace().map(str::to_owned).collect()
    }
}

/// `args` as an [`argv`] input: each word followed by a NUL byte.
pub fn argv_input(args: &[impl AsRef<str>]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in args {
        out.extend_from_slice(a.as_ref().as_bytes());
        out.push(0);
    }
    out
}
