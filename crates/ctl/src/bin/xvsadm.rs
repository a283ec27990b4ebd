//! `xvsadm`: ipvsadm's command line for the xvs director.
//!
//! Reads the command line with ipvsadm's grammar ([`xvs_ctl::parse_args`]),
//! talks to `xvsd` over its control socket (`--socket PATH`, else
//! `$XVS_SOCKET`, else `/run/xvs/xvsd.sock`), prints as ipvsadm prints.
//!
//! Exit status: 0 on success; 2 for an invalid command line, for a command
//! the director refuses (`Service already exists`, `No such service`...)
//! and when the daemon cannot be reached; 1 when a listing fails (`-L -t`
//! of a missing service), as ipvsadm. ipvsadm itself exits with 255 when
//! the kernel refuses a change; xvsadm uses 2 for every refusal, so that
//! "bad command" is one status whatever layer found it. Errors are one
//! line on standard error, without a program-name prefix, as ipvsadm's.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use xvs_ctl::client::{Client, ClientError, socket_path};
use xvs_ctl::list::{
    list_conns, list_daemons, list_services, list_timeouts, listed_state, to_json,
};
use xvs_ctl::proto::{Request, Response, one_line};
use xvs_ctl::{Command, Services, help_text, parse_args, parse_restore, save_text};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (socket, args) = match take_socket(args) {
        Ok(v) => v,
        Err(msg) => return fail(2, &msg),
    };
    let cmd = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => return fail(2, &e.to_string()),
    };
    let path = socket_path(socket.as_deref());
    run(cmd, &path)
}

/// Takes `--socket PATH` / `--socket=PATH` out of the arguments (an xvsadm
/// option, not part of ipvsadm's grammar).
fn take_socket(args: Vec<String>) -> Result<(Option<PathBuf>, Vec<String>), String> {
    let mut socket = None;
    let mut rest = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let value = if a == "--socket" {
            Some(it.next().ok_or("option `--socket` needs a value")?)
        } else {
            a.strip_prefix("--socket=").map(str::to_owned)
        };
        match value {
            Some(_) if socket.is_some() => {
                return Err("option `--socket` given more than once".into());
            }
            Some(v) if v.is_empty() => return Err("option `--socket` needs a value".into()),
            Some(v) => socket = Some(PathBuf::from(v)),
            None => rest.push(a),
        }
    }
    Ok((socket, rest))
}

fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("{}", one_line(msg));
    ExitCode::from(code)
}

fn out(text: &str) -> ExitCode {
    // A closed pipe (`xvsadm -L | head`) is not an error worth a message.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

struct Session<'a> {
    path: &'a Path,
    client: Option<Client>,
}

impl Session<'_> {
    fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let client = match &mut self.client {
            Some(c) => c,
            None => self.client.insert(Client::connect(self.path)?),
        };
        client.call(req)
    }
}

/// What a failed call prints and exits with.
fn call_error(e: ClientError) -> ExitCode {
    fail(2, &e.to_string())
}

fn unexpected(resp: &Response) -> ExitCode {
    match resp {
        Response::Error { message, .. } => fail(2, message),
        other => fail(2, &format!("unexpected answer from xvsd: {other:?}")),
    }
}

fn run(cmd: Command, path: &Path) -> ExitCode {
    let mut s = Session { path, client: None };
    let names = Services::system();
    match cmd {
        Command::Help => out(&help_text()),
        Command::Version => out(&format!(
            "xvsadm {} (ipvsadm v1.31 command language, IPVS v{})\n",
            env!("CARGO_PKG_VERSION"),
            xvs_ctl::state::IPVS_VERSION
        )),
        Command::List(opts) if opts.connections => match s.call(&Request::GetConnections) {
            Ok(Response::Connections(c)) if opts.json => out(&to_json(&c)),
            Ok(Response::Connections(c)) => out(&list_conns(&c, &opts, names)),
            Ok(Response::Error { message, .. }) => fail(1, &message),
            Ok(r) => unexpected(&r),
            Err(e) => call_error(e),
        },
        Command::List(opts) => match s.call(&Request::GetState {
            service: opts.service,
        }) {
            Ok(Response::State(st)) => {
                let text = if opts.json {
                    listed_state(&st, &opts).map(|st| to_json(&st))
                } else {
                    list_services(&st, &opts, names)
                };
                match text {
                    Ok(t) => out(&t),
                    Err(e) => fail(1, &e.to_string()),
                }
            }
            Ok(Response::Error { message, .. }) => fail(1, &message),
            Ok(r) => unexpected(&r),
            Err(e) => call_error(e),
        },
        Command::Timeouts { json } => match s.call(&Request::GetTimeouts) {
            Ok(Response::Timeouts(t)) if json => out(&to_json(&t)),
            Ok(Response::Timeouts(t)) => out(&list_timeouts(&t)),
            Ok(Response::Error { message, .. }) => fail(1, &message),
            Ok(r) => unexpected(&r),
            Err(e) => call_error(e),
        },
        Command::Daemon { json } => match s.call(&Request::GetDaemons) {
            Ok(Response::Daemons(d)) if json => out(&to_json(&d)),
            Ok(Response::Daemons(d)) => out(&list_daemons(&d)),
            Ok(Response::Error { message, .. }) => fail(1, &message),
            Ok(r) => unexpected(&r),
            Err(e) => call_error(e),
        },
        Command::Save { numeric } => match s.call(&Request::GetState { service: None }) {
            Ok(Response::State(st)) => out(&save_text(&st.to_commands(), numeric)),
            Ok(Response::Error { message, .. }) => fail(1, &message),
            Ok(r) => unexpected(&r),
            Err(e) => call_error(e),
        },
        Command::Restore => restore(&mut s, false),
        Command::DryRun(inner) => match *inner {
            Command::Restore => restore(&mut s, true),
            c if c.is_change() => apply(&mut s, vec![c], &[], true),
            // Nothing to change: check only that the daemon answers.
            _ => match s.call(&Request::Ping) {
                Ok(Response::Ok) => out("dry run: nothing to change\n"),
                Ok(r) => unexpected(&r),
                Err(e) => call_error(e),
            },
        },
        c => apply(&mut s, vec![c], &[], false),
    }
}

/// Sends one atomic batch. `lines` maps batch indexes to input line
/// numbers (restore) for the error message.
fn apply(s: &mut Session<'_>, commands: Vec<Command>, lines: &[usize], dry_run: bool) -> ExitCode {
    let n = commands.len();
    match s.call(&Request::Apply { commands, dry_run }) {
        Ok(Response::Ok) if dry_run => out(&format!(
            "dry run: {n} command{} would be applied\n",
            if n == 1 { "" } else { "s" }
        )),
        Ok(Response::Ok) => ExitCode::SUCCESS,
        Ok(Response::Error {
            index: Some(i),
            message,
        }) if !lines.is_empty() => match lines.get(i) {
            Some(line) => fail(2, &format!("line {line}: {message}")),
            None => fail(2, &message),
        },
        Ok(Response::Error { message, .. }) => fail(2, &message),
        Ok(r) => unexpected(&r),
        Err(e) => call_error(e),
    }
}

/// `-R`: every line of standard input, applied as one batch.
fn restore(s: &mut Session<'_>, dry_run: bool) -> ExitCode {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        return fail(2, &format!("reading standard input: {e}"));
    }
    let mut commands = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_restore(line) {
            Ok(cmds) => {
                for c in cmds {
                    commands.push(c);
                    lines.push(i + 1);
                }
            }
            Err((_, e)) => return fail(2, &format!("line {}: {e}", i + 1)),
        }
    }
    apply(s, commands, &lines, dry_run)
}
