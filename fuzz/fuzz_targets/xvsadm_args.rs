//! `xvs_ctl::parse_args`, the ipvsadm grammar, on arbitrary command lines
//! (the input split into words: NUL-terminated when it holds a NUL, else
//! separated by white space; see `xvs_fuzz::argv`).
//!
//! Invariants: never panics; an accepted command passes
//! `Command::validate`; `to_args` of it parses back to the same command;
//! a command that changes the director also survives `save_line` and
//! `parse_restore` (the `-S` / `-R` round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvs_ctl::{parse_args, parse_restore, save_line, to_args};

fuzz_target!(|data: &[u8]| {
    let argv = xvs_fuzz::argv(data);
    let Ok(cmd) = parse_args(&argv) else {
        return;
    };
    if let Err(e) = cmd.validate() {
        panic!("parse_args accepted {argv:?} as {cmd:?}, which does not validate: {e}");
    }
    let args = to_args(&cmd);
    assert_eq!(
        parse_args(&args).as_ref(),
        Ok(&cmd),
        "{argv:?} -> to_args {args:?}"
    );
    if cmd.is_change() {
        for numeric in [true, false] {
            let line = save_line(&cmd, numeric);
            assert_eq!(
                parse_restore(&line).as_deref(),
                Ok(std::slice::from_ref(&cmd)),
                "{argv:?} -> save_line {line:?}"
            );
        }
    }
});
