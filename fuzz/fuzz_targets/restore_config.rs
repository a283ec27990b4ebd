//! `xvs_ctl::parse_restore` (`xvsadm -R`, `xvsd --config` files) on
//! arbitrary text.
//!
//! Invariants: never panics; every command it returns changes the
//! director and validates; `save_text` of them (numeric or with port
//! names) restores to the same commands; applied to the reference model,
//! the state saved (`-S`: `State::to_commands`) restores to a model that
//! saves the same lines again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvs_ctl::model::Model;
use xvs_ctl::{parse_restore, save_text};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cmds) = parse_restore(text) else {
        return;
    };
    for c in &cmds {
        assert!(c.is_change(), "restore returned {c:?}");
        if let Err(e) = c.validate() {
            panic!("restore returned {c:?}, which does not validate: {e}");
        }
    }
    for numeric in [true, false] {
        let saved = save_text(&cmds, numeric);
        assert_eq!(
            parse_restore(&saved).as_ref(),
            Ok(&cmds),
            "saved as {saved:?}"
        );
    }
    let mut model = Model::new();
    if model.apply_batch(&cmds, false).is_err() {
        return;
    }
    let saved = save_text(&model.state.to_commands(), true);
    let again = parse_restore(&saved)
        .unwrap_or_else(|e| panic!("-S output {saved:?} does not restore: {e:?}"));
    let mut fresh = Model::new();
    if let Err(e) = fresh.apply_batch(&again, false) {
        panic!("-S output {saved:?} does not apply to an empty director: {e:?}");
    }
    assert_eq!(save_text(&fresh.state.to_commands(), true), saved);
});
