//! The admin protocol (`xvs_ctl::proto`) on arbitrary request and response
//! lines, as `xvsd` and `xvsadm` read them from the control socket.
//!
//! Invariants: decoding never panics; a decoded request encodes to a line
//! that decodes to the same request, as does a decoded response; of an
//! `Apply` batch, the commands the server accepts (`is_change` and
//! `validate`, its own checks) keep the crate's contracts:
//! `parse_args(to_args(c)) == c` and `parse_restore(save_line(c)) == [c]`,
//! and the reference model applies the batch without panicking; a decoded
//! response prints as `xvsadm` prints it (`-L` in every column set, `-c`,
//! `--timeout`, `--daemon`, `--json`) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvs_ctl::list::{list_conns, list_daemons, list_services, list_timeouts, to_json};
use xvs_ctl::model::Model;
use xvs_ctl::proto::{
    Request, Response, decode_request, decode_response, encode_request, encode_response,
};
use xvs_ctl::{ListOpts, Services, parse_args, parse_restore, save_line, to_args};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode_request(data) {
        let line = encode_request(&req);
        assert_eq!(decode_request(line.as_bytes()).as_ref(), Ok(&req), "{line}");
        if let Request::Apply { commands, dry_run } = &req {
            apply(commands, *dry_run);
        }
    }
    if let Ok(resp) = decode_response(data) {
        let line = encode_response(&resp);
        assert_eq!(
            decode_response(line.as_bytes()).as_ref(),
            Ok(&resp),
            "{line}"
        );
        print(&resp);
    }
});

/// What the server does with a batch: its checks, then the handler (here
/// the reference model).
fn apply(commands: &[xvs_ctl::Command], dry_run: bool) {
    for c in commands {
        if !c.is_change() || c.validate().is_err() {
            return;
        }
        let args = to_args(c);
        let back = parse_args(&args);
        assert_eq!(back.as_ref(), Ok(c), "to_args gave {args:?}");
        let line = save_line(c, true);
        let restored = parse_restore(&line);
        assert_eq!(
            restored.as_deref(),
            Ok(std::slice::from_ref(c)),
            "save_line gave {line:?}"
        );
    }
    let mut model = Model::new();
    let _ = model.apply_batch(commands, dry_run);
}

/// What `xvsadm` prints for a response.
fn print(resp: &Response) {
    let names = Services::empty();
    let all = ListOpts {
        numeric: true,
        stats: true,
        rate: true,
        exact: true,
        thresholds: true,
        persistent_conn: true,
        tun_info: true,
        checks: true,
        ..ListOpts::default()
    };
    match resp {
        Response::State(state) => {
            for opts in [ListOpts::default(), all] {
                let _ = list_services(state, &opts, &names);
            }
            let _ = to_json(state);
        }
        Response::Connections(conns) => {
            for opts in [ListOpts::default(), all] {
                let _ = list_conns(conns, &opts, &names);
            }
        }
        Response::Timeouts(t) => {
            let _ = list_timeouts(t);
        }
        Response::Daemons(d) => {
            let _ = list_daemons(d);
        }
        Response::Counters(c) => {
            let _ = to_json(c);
        }
        Response::Ok | Response::Version { .. } | Response::Error { .. } => {}
    }
}
