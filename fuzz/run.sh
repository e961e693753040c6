#!/usr/bin/env bash
# Fuzzes every target of fuzz/ for a bounded time (DESIGN §7; docs/security.md, "Fuzzing").
#
#   fuzz/run.sh [TARGET...]        all targets when none is named
#
# FUZZ_SECONDS      seconds per target (default 20)
# FUZZ_TARGET_DIR   cargo target directory (default fuzz/target: the sanitizer and coverage
#                   flags differ from the workspace build, so sharing its directory gains nothing)
# FUZZ_SANITIZER    address or none (default: address when a nightly toolchain is installed,
#                   which -Zsanitizer needs; else none on the pinned toolchain)
# FUZZ_ARGS         extra libFuzzer arguments (e.g. "-jobs=1 -workers=1")
#
# Builds all targets once, seeds fuzz/corpus/ (fuzz/seed.sh), runs each target and prints its
# executions, speed and coverage. Fails when a target crashes, leaks, times out or runs out of
# memory: libFuzzer leaves the input in fuzz/artifacts/<target>/, printed here with its base64.
# Inputs that once failed belong in fuzz/regressions/<target>/, which `cargo test` replays.
set -euo pipefail

fuzz=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$fuzz"
started=$SECONDS

seconds=${FUZZ_SECONDS:-20}
target_dir=${FUZZ_TARGET_DIR:-$fuzz/target}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "==== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# (Output captured first: `producer | grep -q` can fail with SIGPIPE under pipefail.)
toolchains=$(rustup toolchain list 2>/dev/null || true)
if [[ -z ${FUZZ_SANITIZER:-} ]]; then
    if grep -q '^nightly' <<<"$toolchains"; then
        FUZZ_SANITIZER=address
    else
        FUZZ_SANITIZER=none
    fi
fi
case $FUZZ_SANITIZER in
address)
    # -Zsanitizer is nightly-only.
    cargo=(cargo +nightly fuzz)
    rustc_version=$(rustc +nightly --version)
    ;;
none)
    # The toolchain rust-toolchain.toml pins.
    cargo=(cargo fuzz)
    rustc_version=$(rustc --version)
    ;;
*)
    echo "FUZZ_SANITIZER must be address or none, not $FUZZ_SANITIZER" >&2
    exit 2
    ;;
esac
flags=(--sanitizer "$FUZZ_SANITIZER" --target-dir "$target_dir")

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "==== cargo fuzz build (sanitizer $FUZZ_SANITIZER, $rustc_version)"
build_started=$SECONDS
"${cargo[@]}" build "${flags[@]}"
echo "built in $((SECONDS - build_started)) s"

echo "==== seeding fuzz/corpus"
bash "$fuzz/seed.sh"

logs=$target_dir/fuzz-logs
mkdir -p "$logs"
# field NAME LINE: the value after `NAME: ` in a libFuzzer status line.
field() { sed -n "s/.* $1: *\([^ ]*\).*/\1/p" <<<"$2"; }
failed=()
summary=()
for target in "${targets[@]}"; do
    echo "==== $target: ${seconds} s"
    mkdir -p "$fuzz/corpus/$target" "$fuzz/artifacts/$target"
    log=$logs/$target.log
    status=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of arguments
    "${cargo[@]}" run "${flags[@]}" "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        ${FUZZ_ARGS:-} >"$log" 2>&1 || status=$?
    # libFuzzer's last status line (`#N DONE cov: X ft: Y corp: C/S ...`, or the last `#N`
    # line before a crash) and its final statistics.
    last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: //p' "$log" | tail -n 1)
    line=$(printf '%-18s execs %10s  exec/s %7s  cov %6s  ft %7s  corp %s' "$target" \
        "${execs:-?}" "${speed:-?}" "$(field cov "$last")" "$(field ft "$last")" \
        "$(field corp "$last")")
    echo "$line"
    echo "$last"
    artifacts=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log")
    if ((status != 0)) || [[ -n $artifacts ]]; then
        failed+=("$target")
        summary+=("$line  FAILED (exit $status)")
        echo "---- $target failed (exit $status); the end of its log ($log):"
        grep -v '^#[0-9]' "$log" | tail -n 60
        while IFS= read -r artifact; do
            [[ -n $artifact ]] || continue
            [[ $artifact == /* ]] || artifact=$fuzz/$artifact
            echo "---- artifact $artifact ($(wc -c <"$artifact") bytes), base64:"
            base64 -w 0 "$artifact"
            echo
        done <<<"$artifacts"
    else
        summary+=("$line  ok")
    fi
done

echo "==== summary (${seconds} s per target, sanitizer $FUZZ_SANITIZER, $((SECONDS - started)) s in all)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
