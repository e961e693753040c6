#!/usr/bin/env bash
# Builds the npm package @shroud-rpc/client (DESIGN §6) and packs it to
# target/npm/shroud-rpc-client-<version>.tgz:
#
#   1. cargo build -p shroud-wasm --target wasm32-unknown-unknown --profile wasm-release (the size
#      profile of the root Cargo.toml, with sha2's compact software backend);
#   2. wasm-bindgen --target web into target/npm/bindgen;
#   3. wasm-opt -Oz --converge into target/npm/wasm (binaryen at the version that
#      wasm-client/tests/browser/package.json pins), skipped when the wasm-bindgen output and the
#      flags are those of the module already there, since it takes the longest;
#   4. stages wasm-client/npm with the two generated files (shroud_wasm.js, shroud_wasm_bg.wasm)
#      in target/npm/package and packs it with `npm pack --pack-destination target/npm`.
#
# Prints the sizes (raw and gzip -9), fails when the shipped wasm is 500 000 bytes or more
# gzipped (docs/BENCHMARKS.md), and prints the tarball's path as its last line. Needs
# wasm-bindgen-cli matching Cargo.lock's wasm-bindgen, node and npm; wasm-opt comes from
# wasm-client/tests/browser/node_modules when `npm ci` installed it there, else from
# `npx binaryen@VERSION` (or env WASM_OPT). CARGO_TARGET_DIR is honoured. wasm-client/tests/run.sh
# calls this and uses what it leaves in target/npm, so CI builds the wasm once.
set -euo pipefail

npm_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
crate=$(dirname "$npm_dir")
root=$(dirname "$crate")
target=${CARGO_TARGET_DIR:-target}
[[ $target = /* ]] || target=$root/$target
export CARGO_TARGET_DIR=$target
out=$target/npm
cd "$root"

fail() {
    printf 'npm build: FAIL: %s\n' "$*" >&2
    exit 1
}

step_pid=""
# Stops the step running now, if any (a `timeout`, which passes the signal to its process group).
cleanup() {
    local status=$?
    if [[ -n $step_pid ]]; then
        kill -TERM "$step_pid" 2>/dev/null || true
        wait "$step_pid" 2>/dev/null || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs "$2..." with a time limit of $1 seconds, in the background and waited for, so that a
# signal to this script runs its trap at once.
step() {
    local limit=$1
    shift
    timeout "$limit" "$@" &
    step_pid=$!
    wait "$step_pid"
    step_pid=""
}

# --- prerequisites -------------------------------------------------------------------------------
locked=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
command -v wasm-bindgen >/dev/null || fail "wasm-bindgen not found: cargo install wasm-bindgen-cli --version $locked"
installed=$(wasm-bindgen --version | awk '{ print $2 }')
[[ $installed = "$locked" ]] ||
    fail "wasm-bindgen-cli $installed does not match wasm-bindgen $locked in Cargo.lock: cargo install wasm-bindgen-cli --version $locked"
for tool in node npm gzip; do
    command -v "$tool" >/dev/null || fail "$tool not found"
done
version=$(node -p 'require(process.argv[1]).version' "$npm_dir/package.json")
crate_version=$(awk '/^\[workspace.package\]$/ { found = 1 } found && /^version = / { gsub(/"/, "", $3); print $3; exit }' Cargo.toml)
[[ $version = "$crate_version" ]] ||
    fail "wasm-client/npm/package.json has version $version, the workspace (Cargo.toml) $crate_version: keep them equal"

# binaryen from npm, pinned: Debian bookworm's wasm-opt 108 is too old for wasm-bindgen 0.2.130
# output and emits a module that fails to instantiate.
binaryen=$(node -p 'require(process.argv[1]).dependencies.binaryen' "$crate/tests/browser/package.json")
if [[ -n ${WASM_OPT:-} ]]; then
    wasm_opt=("$WASM_OPT")
elif [[ $("$crate/tests/browser/node_modules/.bin/wasm-opt" --version 2>/dev/null || true) = "wasm-opt version ${binaryen%%.*} "* ]]; then
    wasm_opt=("$crate/tests/browser/node_modules/.bin/wasm-opt")
else
    wasm_opt=(npx --yes --package "binaryen@$binaryen" -- wasm-opt)
fi

# --- the wasm ------------------------------------------------------------------------------------
echo "npm build: cargo build -p shroud-wasm --target wasm32-unknown-unknown --profile wasm-release"
# sha2 0.11 selects its compact software backend by a cfg, not a feature, so it is set here, for
# wasm32 only (cargo ignores target rustflags when RUSTFLAGS is set).
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-} --cfg sha2_backend_soft=\"compact\"" \
    step 2400 cargo build --locked -p shroud-wasm --target wasm32-unknown-unknown --profile wasm-release
release_wasm=$target/wasm32-unknown-unknown/wasm-release/shroud_wasm.wasm

echo "npm build: wasm-bindgen --target web"
rm -rf "$out/bindgen"
step 300 wasm-bindgen --target web --out-dir "$out/bindgen" "$release_wasm"

# The features are those rustc 1.95 enables for wasm32-unknown-unknown; wasm-opt also reads them
# from the module's target_features section, naming them keeps it from falling back to MVP
# without one. --converge repeats -Oz while the module still shrinks.
opt_flags=(-Oz --converge --enable-bulk-memory --enable-bulk-memory-opt --enable-nontrapping-float-to-int
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue)
key="binaryen $binaryen ${opt_flags[*]} $(sha256sum <"$out/bindgen/shroud_wasm_bg.wasm" | awk '{ print $1 }')"
shipped=$out/wasm/shroud_wasm_bg.wasm
mkdir -p "$out/wasm"
if [[ -f $shipped && $(cat "$out/wasm/.source" 2>/dev/null || true) = "$key" ]]; then
    echo "npm build: wasm-opt skipped: $shipped is already this wasm-bindgen output, optimised"
else
    echo "npm build: wasm-opt ${opt_flags[*]} (binaryen $binaryen)"
    rm -f "$out/wasm/.source"
    step 900 "${wasm_opt[@]}" "${opt_flags[@]}" "$out/bindgen/shroud_wasm_bg.wasm" -o "$shipped.tmp"
    mv "$shipped.tmp" "$shipped"
    printf '%s\n' "$key" >"$out/wasm/.source"
fi
cp "$out/bindgen/shroud_wasm.js" "$out/wasm/shroud_wasm.js"

gz() { gzip -9 <"$1" | wc -c; }
printf '%-52s %10s %10s\n' "wasm bundle size" "bytes" "gzip -9"
printf '%-52s %10d %10d\n' "cargo --profile wasm-release (shroud_wasm.wasm)" "$(wc -c <"$release_wasm")" "$(gz "$release_wasm")"
printf '%-52s %10d %10d\n' "wasm-bindgen --target web (shroud_wasm_bg.wasm)" "$(wc -c <"$out/bindgen/shroud_wasm_bg.wasm")" "$(gz "$out/bindgen/shroud_wasm_bg.wasm")"
printf '%-52s %10d %10d\n' "wasm-opt -Oz (shroud_wasm_bg.wasm, shipped)" "$(wc -c <"$shipped")" "$(gz "$shipped")"
printf '%-52s %10d %10d\n' "JS glue (shroud_wasm.js)" "$(wc -c <"$out/wasm/shroud_wasm.js")" "$(gz "$out/wasm/shroud_wasm.js")"
# DESIGN §8: under 500 KB gzipped. A change that grows the shipped module past it fails here,
# where the figure is measured, rather than in a closing note.
shipped_gz=$(gz "$shipped")
((shipped_gz < 500000)) || fail "the wasm bundle is $shipped_gz bytes gzipped, over the 500 000-byte target (docs/BENCHMARKS.md)"

# --- the package ---------------------------------------------------------------------------------
echo "npm build: npm pack"
stage=$out/package
rm -rf "$stage"
mkdir -p "$stage"
# package.json's "files" (and npm's own rules: package.json, README.md) decide what is packed;
# build.sh itself is not in it.
cp -R "$npm_dir/." "$stage/"
cp "$shipped" "$out/wasm/shroud_wasm.js" "$stage/"
tarball=$out/shroud-rpc-client-$version.tgz
rm -f "$tarball"
step 300 npm pack "$stage" --pack-destination "$out" --loglevel=warn --json >"$out/pack.json"
[[ -f $tarball ]] || fail "npm pack did not write $tarball (see $out/pack.json)"
packed_wasm=$(tar -xzOf "$tarball" package/shroud_wasm_bg.wasm | wc -c)
packed_wasm_gz=$(tar -xzOf "$tarball" package/shroud_wasm_bg.wasm | gzip -9 | wc -c)
echo "npm build: $(tar -tzf "$tarball" | wc -l) files, $(wc -c <"$tarball") bytes; shroud_wasm_bg.wasm inside: $packed_wasm bytes, $packed_wasm_gz gzip -9"
echo "$tarball"
