//! The xvs project's tasks, outside the binaries' build (`cargo xtask
//! TASK`, an alias of `cargo run -p xtask --` in `.cargo/config.toml`):
//!
//! - `dist [--out DIR]`: the man pages `xvsd(8)` and `xvsadm(8)` and the
//!   bash, zsh and fish completions of both, generated from the clap
//!   commands the binaries parse with ([`xvs_dataplane::cli::command`],
//!   [`xvs_ctl::grammar::xvsadm_command`]), so they cannot drift from the
//!   programs. Default DIR: `TARGET/dist`.
//! - `deb [--out DIR]`: the Debian package `xvs`: a release build of
//!   `xvsd` and `xvsadm`, `dist` into `TARGET/release/dist`, then
//!   `cargo deb --no-build` with the metadata of `crates/xvs` (what goes
//!   where). Needs cargo-deb (`scripts/package.sh` installs it). Default
//!   DIR: `TARGET/debian`.
//! - `check-deb [DEB]`: unpacks the package into a scratch root
//!   (`dpkg -x`) and checks it: every file in place with its mode, the
//!   conffiles, the dependencies, the binaries' `--version` and `--help`,
//!   the man pages through groff, the bash completion through bash, the
//!   unit through `systemd-analyze verify` when that runs. Default DEB:
//!   the newest `TARGET/debian/xvs_*.deb`.
//!
//! - `perf-report [--parts memory,pipeline,veth,http] [--quick]`: runs the
//!   benchmarks and rewrites the measured parts of `docs/performance.md`
//!   (between `<!-- perf-report:PART -->` markers) and its charts; the
//!   end-to-end parts need root (see [`report`]).
//!
//! TARGET is cargo's target directory (`CARGO_TARGET_DIR` honoured).
#![forbid(unsafe_code)]

mod deb;
mod dist;
mod docs;
mod report;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

/// xvs project tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Man pages and shell completions, generated from clap.
    Dist {
        /// Output directory (default: TARGET/dist).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The Debian package `xvs` (release build, dist, cargo deb).
    Deb {
        /// Directory for the .deb (default: TARGET/debian).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Unpack a built package into a scratch root and check it.
    CheckDeb {
        /// The package (default: the newest TARGET/debian/xvs_*.deb).
        deb: Option<PathBuf>,
    },
    /// Run the benchmarks and rewrite the measured parts of
    /// docs/performance.md.
    PerfReport {
        /// Parts to regenerate, comma-separated: memory, pipeline, veth,
        /// http (default: all).
        #[arg(long, value_delimiter = ',', default_values_t = report::PARTS.map(String::from))]
        parts: Vec<String>,
        /// Short runs, to check the command (not figures to publish).
        #[arg(long)]
        quick: bool,
    },
}

/// A task's failure: one message for the user.
type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Dist { out } => {
            let out = out.unwrap_or_else(|| target_dir().join("dist"));
            dist::write(&out).map(|files| {
                for f in files {
                    println!("{}", f.display());
                }
            })
        }
        Task::Deb { out } => deb::build(out.as_deref()).map(|deb| println!("{}", deb.display())),
        Task::CheckDeb { deb } => deb
            .map_or_else(deb::newest, Ok)
            .and_then(|d| deb::check(&d)),
        Task::PerfReport { parts, quick } => report::regenerate(&parts, quick),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace's root directory.
fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
}

/// Cargo's target directory, as `cargo metadata` reports it (so that
/// `CARGO_TARGET_DIR` and `.cargo/config.toml` are honoured).
fn target_dir() -> PathBuf {
    metadata()
        .ok()
        .and_then(|m| m["target_directory"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| workspace().join("target"))
}

/// `cargo metadata --no-deps` of the workspace.
fn metadata() -> Result<serde_json::Value> {
    let out = output(
        Command::new(cargo())
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(workspace()),
    )?;
    serde_json::from_str(&out).map_err(|e| format!("cargo metadata: {e}"))
}

/// The cargo that runs us (`$CARGO`), else the one on `PATH`.
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Runs `cmd`, its output shown; fails unless it succeeds.
fn run(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| format!("{}: {e}", show(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {status}", show(cmd)))
    }
}

/// Runs `cmd` and returns its standard output; fails (with its standard
/// error) unless it succeeds.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("{}: {e}", show(cmd)))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}: {}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}
