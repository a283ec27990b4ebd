#!/usr/bin/env bash
# Builds the cargo fuzz targets of fuzz/ and runs each for a fixed time
# from its committed seeds; fails if a target crashes or breaks an invariant (the
# input is left in fuzz/artifacts/<target>/). docs/fuzzing.md has the
# targets, their invariants and how to run them longer.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 20; every target when none is named.
#   FUZZ_JOBS=2         run two targets at a time (default 1).
#   FUZZ_CORPUS=DIR     keep what the fuzzer finds in DIR/<target>
#                       (default: a scratch directory, deleted at the end;
#                       the committed seeds are only read).
#   FUZZ_LOGS=DIR       keep each target's libFuzzer output in DIR/<target>.log.
#   FUZZ_SANITIZER=address  build with ASan (needs nightly features: the
#                       script sets RUSTC_BOOTSTRAP=1 on stable). Default
#                       none: the code under test has no unsafe code.
#
# The build goes to ${CARGO_TARGET_DIR:-target}/fuzz (fuzz-address with
# ASan), apart from the main workspace's artifacts (other RUSTFLAGS, its
# own lock file fuzz/Cargo.lock).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-20}
shift || true
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

base=${CARGO_TARGET_DIR:-$PWD/target}
case "$base" in /*) ;; *) base=$PWD/$base ;; esac
sanitizer=${FUZZ_SANITIZER:-none}
target_dir=$base/fuzz
if [ "$sanitizer" != none ]; then
    # -Zsanitizer is a nightly flag; stable accepts it with this. Other
    # flags, other artifacts: a directory of their own, so that switching
    # does not rebuild everything.
    export RUSTC_BOOTSTRAP=1
    target_dir=$base/fuzz-$sanitizer
fi
flags=(--fuzz-dir fuzz --target-dir "$target_dir" --sanitizer "$sanitizer")

# The lock file is committed: refuse to build with other versions.
cargo fetch --locked --manifest-path fuzz/Cargo.toml
cargo fuzz build "${flags[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
[ -z "${FUZZ_LOGS:-}" ] || mkdir -p "$FUZZ_LOGS"
corpus_root=${FUZZ_CORPUS:-$scratch/corpus}

run_one() {
    local t=$1 log=${FUZZ_LOGS:-$scratch}/$1.log
    local corpus=$corpus_root/$t
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    local opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    local dict=fuzz/dict/$t.dict
    [ -f "$dict" ] || dict=
    case "$t" in
        xvsadm_args | restore_config) dict=fuzz/dict/xvsadm.dict ;;
    esac
    [ -n "$dict" ] && opts+=(-dict="$dict")
    # New inputs go to the first directory only: the seeds stay as they are.
    if cargo fuzz run "${flags[@]}" "$t" "$corpus" "fuzz/corpus/$t" -- "${opts[@]}" >"$log" 2>&1; then
        local execs cov
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
        echo "fuzz $t: ok, ${execs:-?} runs in ${secs}s, $cov, corpus $(find "$corpus" -type f | wc -l) new"
    else
        echo "fuzz $t: FAILED (input in fuzz/artifacts/$t/)" >&2
        tail -n 60 "$log" >&2
        return 1
    fi
}

status=0
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
    pids=()
    for t in "${targets[@]}"; do
        run_one "$t" &
        pids+=($!)
        if [ ${#pids[@]} -ge "$FUZZ_JOBS" ]; then
            wait "${pids[0]}" || status=1
            pids=("${pids[@]:1}")
        fi
    done
    for p in "${pids[@]}"; do wait "$p" || status=1; done
else
    for t in "${targets[@]}"; do
        run_one "$t" || status=1
    done
fi
exit $status
