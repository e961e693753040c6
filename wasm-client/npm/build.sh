#!/usr/bin/env bash
# Builds the npm package @shroud-rpc/client (DESIGN §6) and packs it to
# target/npm/shroud-rpc-client-<version>.tgz. The package holds five wasm modules, each with its
# wasm-bindgen glue: one per platform verifier (tdx, sgx, sev-snp, nitro: a dapp pins one
# deployment, and client.js loads the module of the platform its policy pins, on demand) and one
# with all of them (shroud_wasm_bg.wasm, for a policy that pins several, or none but simulated).
# Each goes through the same pipeline:
#
#   1. cargo build -p shroud-wasm --target wasm32-unknown-unknown --profile wasm-release, with
#      --no-default-features --features PLATFORM for a platform's module (the size profile of the
#      root Cargo.toml, with sha2's compact software backend); the five builds share every
#      dependency but shroud-ra-tls, shroud-ohttp and shroud-wasm, so the four after the first
#      take a link each;
#   2. wasm-bindgen --target web into target/npm/bindgen (shroud_wasm[_PLATFORM].js and
#      shroud_wasm[_PLATFORM]_bg.wasm);
#   3. wasm-opt -Oz --converge into target/npm/wasm (binaryen at the version that
#      wasm-client/tests/browser/package.json pins), in the background while the next module
#      builds, and skipped for a module whose wasm-bindgen output and flags are those of the
#      optimised module already there, since it takes the longest;
#   4. stages wasm-client/npm with the ten generated files in target/npm/package, installs its one
#      dependency there (smol-toml, bundled: package.json "bundleDependencies"; `npm ci` from
#      package-lock.json) and packs it with `npm pack --pack-destination target/npm`.
#
# Prints the sizes of every module (raw and gzip -9), fails when a platform's module is 300 000
# bytes or more gzipped or the all-platform one 500 000 or more (DESIGN §8, docs/BENCHMARKS.md),
# and prints the tarball's path as its last line. Needs wasm-bindgen-cli matching Cargo.lock's
# wasm-bindgen, node and npm; wasm-opt comes from wasm-client/tests/browser/node_modules when
# `npm ci` installed it there, else from `npx binaryen@VERSION` (or env WASM_OPT).
# CARGO_TARGET_DIR is honoured. wasm-client/tests/run.sh calls this and uses what it leaves in
# target/npm, so CI builds the wasm once.
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
opt_pids=() # the wasm-opt runs in the background, with their modules' names and cache keys
opt_names=()
opt_keys=()
# Stops the step running now and the wasm-opt runs, if any (each a `timeout`, which passes the
# signal to its process group).
cleanup() {
    local status=$? pid
    for pid in $step_pid "${opt_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
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

# --- the wasm modules ----------------------------------------------------------------------------
# The module of each variant, as wasm-bindgen names it from --out-name, and its cargo features.
variants=(all tdx sgx sev-snp nitro)
module_name() { [[ $1 = all ]] && echo shroud_wasm || echo "shroud_wasm_$1"; }
cargo_features() { [[ $1 = all ]] || echo "--no-default-features --features $1"; }

# The features are those rustc 1.95 enables for wasm32-unknown-unknown; wasm-opt also reads them
# from the module's target_features section, naming them keeps it from falling back to MVP
# without one. --converge repeats -Oz while the module still shrinks.
opt_flags=(-Oz --converge --enable-bulk-memory --enable-bulk-memory-opt --enable-nontrapping-float-to-int
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue)
rm -rf "$out/bindgen" "$out/cargo"
mkdir -p "$out/bindgen" "$out/cargo" "$out/wasm"
build_started=$SECONDS
for variant in "${variants[@]}"; do
    name=$(module_name "$variant")
    echo "npm build: cargo build -p shroud-wasm --target wasm32-unknown-unknown --profile wasm-release $(cargo_features "$variant") ($name)"
    # sha2 0.11 selects its compact software backend by a cfg, not a feature, so it is set here,
    # for wasm32 only (cargo ignores target rustflags when RUSTFLAGS is set). The source paths
    # that panic messages carry are cut to their crate's: shorter, and the same on every machine.
    # shellcheck disable=SC2046
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-} --cfg sha2_backend_soft=\"compact\" --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}/registry/src/= --remap-path-prefix=$root/=" \
        step 2400 cargo build --locked -p shroud-wasm --target wasm32-unknown-unknown --profile wasm-release $(cargo_features "$variant")
    cp "$target/wasm32-unknown-unknown/wasm-release/shroud_wasm.wasm" "$out/cargo/$name.wasm"

    echo "npm build: wasm-bindgen --target web --out-name $name"
    step 300 wasm-bindgen --target web --out-name "$name" --out-dir "$out/bindgen" "$out/cargo/$name.wasm"
    key="binaryen $binaryen ${opt_flags[*]} $(sha256sum <"$out/bindgen/${name}_bg.wasm" | awk '{ print $1 }')"
    shipped=$out/wasm/${name}_bg.wasm
    if [[ -f $shipped && $(cat "$out/wasm/$name.source" 2>/dev/null || true) = "$key" ]]; then
        echo "npm build: wasm-opt skipped: $shipped is already this wasm-bindgen output, optimised"
    else
        echo "npm build: wasm-opt ${opt_flags[*]} (binaryen $binaryen) of $name, in the background"
        rm -f "$out/wasm/$name.source"
        timeout 900 "${wasm_opt[@]}" "${opt_flags[@]}" "$out/bindgen/${name}_bg.wasm" -o "$shipped.tmp" &
        opt_pids+=($!)
        opt_names+=("$name")
        opt_keys+=("$key")
    fi
    cp "$out/bindgen/$name.js" "$out/wasm/$name.js"
done
for i in "${!opt_pids[@]}"; do
    name=${opt_names[i]}
    wait "${opt_pids[i]}" || fail "wasm-opt of $name failed (exit $?)"
    mv "$out/wasm/${name}_bg.wasm.tmp" "$out/wasm/${name}_bg.wasm"
    printf '%s\n' "${opt_keys[i]}" >"$out/wasm/$name.source"
done
opt_pids=()
echo "npm build: five modules built and optimised in $((SECONDS - build_started)) s"

gz() { gzip -9 <"$1" | wc -c; }
row() { printf '%-52s %10d %10d\n' "$1" "$(wc -c <"$2")" "$(gz "$2")"; }
printf '%-52s %10s %10s\n' "wasm bundle size" "bytes" "gzip -9"
for variant in "${variants[@]}"; do
    name=$(module_name "$variant")
    row "$variant: cargo --profile wasm-release" "$out/cargo/$name.wasm"
    row "$variant: wasm-bindgen --target web" "$out/bindgen/${name}_bg.wasm"
    row "$variant: wasm-opt -Oz (${name}_bg.wasm)" "$out/wasm/${name}_bg.wasm"
done
row "JS glue (shroud_wasm.js; each module has its own)" "$out/wasm/shroud_wasm.js"
# DESIGN §8: what a dapp loads for the one platform it pins under 300 KB gzipped, the
# all-platform module under 500 KB. A change that grows a module past its limit fails here,
# where the figure is measured, rather than in a closing note.
for variant in "${variants[@]}"; do
    name=$(module_name "$variant")
    shipped_gz=$(gz "$out/wasm/${name}_bg.wasm")
    limit=$([[ $variant = all ]] && echo 500000 || echo 300000)
    ((shipped_gz < limit)) ||
        fail "the $variant wasm module ${name}_bg.wasm is $shipped_gz bytes gzipped, over its $limit-byte target (docs/BENCHMARKS.md)"
done

# --- the package ---------------------------------------------------------------------------------
echo "npm build: npm pack"
stage=$out/package
rm -rf "$stage"
mkdir -p "$stage"
# package.json's "files" (and npm's own rules: package.json, README.md) decide what is packed;
# build.sh itself is not in it.
cp -R "$npm_dir/." "$stage/"
for variant in "${variants[@]}"; do
    name=$(module_name "$variant")
    cp "$out/wasm/${name}_bg.wasm" "$out/wasm/$name.js" "$stage/"
done
# smol-toml (client.js reads the dapp's policy TOML with it) is bundled into the tarball
# (package.json "bundleDependencies"), at the version and integrity package-lock.json pins, so
# that a page without a bundler finds it inside the package as well.
step 300 npm ci --prefix "$stage" --omit=dev --omit=peer --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error
tarball=$out/shroud-rpc-client-$version.tgz
rm -f "$tarball"
step 300 npm pack "$stage" --pack-destination "$out" --loglevel=warn --json >"$out/pack.json"
[[ -f $tarball ]] || fail "npm pack did not write $tarball (see $out/pack.json)"
echo "npm build: $(tar -tzf "$tarball" | wc -l) files, $(wc -c <"$tarball") bytes"
echo "$tarball"
