#!/usr/bin/env bash
# shroud-wasm end to end, as CI runs it after the workspace is built (`cargo build`):
#
#   1. `npm ci` in tests/browser (ganache, playwright-core, binaryen's wasm-opt);
#   2. starts ganache (logging every call it handles) and `shroud-gateway --dev` in front of it,
#      both on 127.0.0.1, ports picked by the kernel;
#   3. runs the wasm-bindgen tests (tests/web.rs) under Node, then the same binary in headless
#      Chromium, with the gateway's URL and measurement compiled in;
#   4. builds the npm package @shroud-rpc/client with npm/build.sh (five wasm modules, one per
#      platform verifier and one with all of them, each through cargo profile `wasm-release`,
#      `wasm-bindgen --target web` and `wasm-opt -Oz`; `npm pack` to
#      target/npm/shroud-rpc-client-VERSION.tgz), then prints the size of every module in the
#      tarball, raw and gzip -9, and fails when a platform's module is 300 000 bytes or more
#      gzipped or the all-platform one 500 000 or more (DESIGN §8);
#   5. unpacks it into examples/pkg and loads the example page in headless Chromium
#      (tests/browser/run.mjs): ShroudClient -> EIP-1193 -> OHTTP -> gateway -> ganache must show
#      the node's block number, and a wrong pin must be refused;
#   6. a throwaway dapp (tests/dapp, copied to a temporary folder) installs the tarball with viem,
#      ethers, web3.js 4, esbuild and TypeScript from npm, type-checks, bundles with esbuild and
#      runs in headless Chromium (tests/browser/dapp.mjs: viem reads a block and sends a
#      transaction, ethers reads the block number, web3.js's BatchRequest, a wrong pin refused
#      with code 4900 and no call reaching the node; on its second page a policy pinning one
#      platform loads that platform's module alone), then under Node (tests/dapp/node.mjs).
#
# Installs nothing but the npm packages (from the npm cache when it holds them). Needs: wasm-bindgen-cli matching Cargo.lock's
# wasm-bindgen, Debian's chromium and chromium-driver, clang (ring for wasm32, in the tests), node
# and npm. Every process it starts is stopped on exit; each step has a time limit. Exits non-zero
# on any failure. CARGO_TARGET_DIR is honoured (default: target/ at the workspace root).
set -euo pipefail

tests=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
crate=$(dirname "$tests")
root=$(dirname "$crate")
browser=$tests/browser
target=${CARGO_TARGET_DIR:-target}
[[ $target = /* ]] || target=$root/$target
export CARGO_TARGET_DIR=$target
gateway_bin=$target/debug/shroud-gateway
cd "$root"

say() { printf '\n== shroud-wasm: %s\n' "$*"; }
fail() {
    printf 'shroud-wasm: FAIL: %s\n' "$*" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/shroud-wasm.XXXXXX")
pids=()     # the services: ganache, the gateway
step_pid="" # the step running now (a `timeout`, which passes signals on to its process group)
tail_pid="" # what shows that step's log
# Stops what this script started (by pid): SIGTERM, then SIGKILL after 10 s.
cleanup() {
    local status=$? pid
    [[ -z $step_pid ]] || pids+=("$step_pid")
    [[ -z $tail_pid ]] || pids+=("$tail_pid")
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs "$2..." with a time limit of $1 seconds. In the background and waited for, because bash
# runs a trap only once a foreground command has finished, while `wait` returns at once.
step() {
    local limit=$1
    shift
    timeout "$limit" "$@" &
    step_pid=$!
    wait "$step_pid"
    step_pid=""
}

# Like `step`, with the output also kept in log $1 (shown as it comes, complete when it returns).
logged_step() {
    local log=$1 limit=$2 status=0
    shift 2
    : >"$log" # before `tail` starts: the redirection below happens in the background job
    timeout "$limit" "$@" >"$log" 2>&1 &
    step_pid=$!
    tail -n +1 -f --pid="$step_pid" "$log" &
    tail_pid=$!
    wait "$step_pid" || status=$?
    step_pid=""
    wait "$tail_pid" || true
    tail_pid=""
    return "$status"
}

# Waits up to 60 s for a line matching $2 in log $1 written by process $3; prints the line.
wait_for_line() {
    local log=$1 pattern=$2 pid=$3 line
    for _ in $(seq 1 600); do
        if line=$(grep -m1 -E "$pattern" "$log" 2>/dev/null); then
            printf '%s\n' "$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "--- $log" >&2
    tail -n 40 "$log" >&2 || true
    return 1
}

# --- prerequisites -------------------------------------------------------------------------------
locked=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
for tool in wasm-bindgen wasm-bindgen-test-runner; do
    command -v "$tool" >/dev/null ||
        fail "$tool not found: cargo install wasm-bindgen-cli --version $locked"
done
installed=$(wasm-bindgen --version | awk '{ print $2 }')
[[ $installed = "$locked" ]] ||
    fail "wasm-bindgen-cli $installed does not match wasm-bindgen $locked in Cargo.lock: cargo install wasm-bindgen-cli --version $locked"
for tool in node npm /usr/bin/chromium /usr/bin/chromedriver; do
    command -v "$tool" >/dev/null || fail "$tool not found (apt-get install -y chromium chromium-driver nodejs npm)"
done
[[ -x $gateway_bin ]] || fail "$gateway_bin not found: build the workspace first (cargo build)"

say "npm ci ($browser)"
step 600 npm ci --prefix "$browser" --no-audit --no-fund --loglevel=error

# --- the dev chain and the gateway ---------------------------------------------------------------
say "starting ganache and shroud-gateway --dev"
# --log-calls: one `rpc METHOD` line per call the node handles, for the dapp's wrong-pin check.
node "$browser/ganache.mjs" --log-calls >"$work/ganache.log" 2>&1 &
pids+=($!)
node_url=$(wait_for_line "$work/ganache.log" '^ganache listening on ' "${pids[-1]}" | awk '{ print $4 }') ||
    fail "ganache did not start"
echo "ganache: $node_url"

"$gateway_bin" --dev --upstream "eth=$node_url" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    >"$work/gateway.out" 2>"$work/gateway.err" &
pids+=($!)
origin=$(wait_for_line "$work/gateway.out" '^shroud-gateway listening on https://' "${pids[-1]}" | awk '{ print $4 }') ||
    fail "shroud-gateway did not start (stderr: $(tail -n 20 "$work/gateway.err"))"
measurement=$(wait_for_line "$work/gateway.out" '^measurement: simulated [0-9a-f]{96}$' "${pids[-1]}" | awk '{ print $3 }') ||
    fail "shroud-gateway printed no simulated measurement"
gateway_url=$origin/eth
echo "gateway: $gateway_url (measurement $measurement)"

# --- wasm-bindgen tests, Node then Chromium ------------------------------------------------------
# Compile-time inputs of tests/web.rs (a wasm test cannot read the environment it runs in).
export SHROUD_WASM_GATEWAY=$gateway_url SHROUD_WASM_MEASUREMENT=$measurement SHROUD_REQUIRE_GATEWAY=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT=60

say "building the wasm tests"
step 2400 cargo test -p shroud-wasm --target wasm32-unknown-unknown --no-run

count_passed() { awk '/^test result: ok\./ { n += $4 } END { print n + 0 }' "$1"; }

say "wasm-bindgen tests under Node"
# The dev gateway's RA-TLS certificate is self-signed and no CA vouches for it, so Node's fetch
# is told not to check it. That gives nothing away: the calls are OHTTP, sealed to the keys
# that the test verified against the pinned measurement in wasm, so TLS only carries ciphertext.
NODE_TLS_REJECT_UNAUTHORIZED=0 logged_step "$work/node.log" \
    600 cargo test -p shroud-wasm --target wasm32-unknown-unknown -- --nocapture
node_passed=$(count_passed "$work/node.log")

say "wasm-bindgen tests in headless Chromium"
# Same binary; WASM_BINDGEN_USE_BROWSER picks the browser. webdriver.json adds
# --ignore-certificate-errors, for the reason above.
WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver \
    WASM_BINDGEN_TEST_WEBDRIVER_JSON="$crate/webdriver.json" logged_step "$work/chromium.log" \
    600 cargo test -p shroud-wasm --target wasm32-unknown-unknown -- --nocapture
chromium_passed=$(count_passed "$work/chromium.log")
grep -q 'Running headless tests in Chrome' "$work/chromium.log" || fail "the browser run did not run in Chromium"
((node_passed >= 4 && chromium_passed >= 4)) ||
    fail "expected at least 4 wasm tests per host, got $node_passed (Node) and $chromium_passed (Chromium)"

# --- the npm package and its size ----------------------------------------------------------------
say "building the npm package (wasm-client/npm/build.sh: five modules, each profile wasm-release, wasm-bindgen --target web, wasm-opt -Oz; npm pack)"
# The one build of the release wasm in this run: the example page and the dapp below both use
# this tarball. build.sh prints its own size table and fails past the targets too.
npm_build_started=$SECONDS
logged_step "$work/npm-build.log" 3600 bash "$crate/npm/build.sh"
tarball=$(tail -n 1 "$work/npm-build.log")
[[ $tarball = "$target"/npm/shroud-rpc-client-*.tgz && -f $tarball ]] || fail "npm/build.sh named no tarball: $tarball"
echo "npm/build.sh: $((SECONDS - npm_build_started)) s"

say "wasm bundle sizes: every module of $(basename "$tarball")"
# What a dapp loads: the module of the one platform its policy pins, under 300 000 bytes gzipped;
# the all-platform module (a policy pinning several platforms) under 500 000 (DESIGN §8).
printf '%-40s %10s %10s %10s\n' "module" "bytes" "gzip -9" "limit"
oversize=()
for module in shroud_wasm_tdx shroud_wasm_sgx shroud_wasm_sev-snp shroud_wasm_nitro shroud_wasm; do
    raw=$(tar -xzOf "$tarball" "package/${module}_bg.wasm" | wc -c)
    gz=$(tar -xzOf "$tarball" "package/${module}_bg.wasm" | gzip -9 | wc -c)
    limit=$([[ $module = shroud_wasm ]] && echo 500000 || echo 300000)
    printf '%-40s %10d %10d %10d\n' "${module}_bg.wasm" "$raw" "$gz" "$limit"
    ((raw > 0 && gz < limit)) || oversize+=("${module}_bg.wasm ($gz bytes gzipped, limit $limit)")
done
((${#oversize[@]} == 0)) || fail "wasm modules at or over their size limit: ${oversize[*]}"

# --- the example page ----------------------------------------------------------------------------
say "example page in headless Chromium (the package unpacked, no bundler: ShroudClient -> EIP-1193 -> OHTTP -> gateway -> ganache)"
pkg=$crate/examples/pkg
rm -rf "$pkg"
mkdir -p "$pkg"
tar -xzf "$tarball" -C "$pkg" --strip-components=1
logged_step "$work/page.log" \
    300 node "$browser/run.mjs" --gateway "$gateway_url" --measurement "$measurement" --node "$node_url"
page_passed=$(grep -c '^block number shown by the page' "$work/page.log" || true)
((page_passed == 1)) || fail "the example page test did not pass"

# --- a throwaway dapp on the packed tarball -------------------------------------------------------
# As a dapp developer would use the package: a fresh project (tests/dapp copied to a temporary
# folder) installs the tarball next to viem, ethers, web3.js 4, esbuild and TypeScript (pinned by
# tests/dapp/package-lock.json), type-checks against the package's declarations, bundles with
# esbuild and runs in headless Chromium (tests/browser/dapp.mjs) and under Node (node.mjs).
dapp_started=$SECONDS
say "throwaway dapp: npm install of $(basename "$tarball") with viem, ethers, web3, esbuild, typescript"
echo "package $(basename "$tarball"): $(wc -c <"$tarball") bytes"
dapp=$work/dapp
mkdir -p "$dapp"
cp -R "$tests/dapp/." "$dapp/"
rm -rf "$dapp/node_modules" "$dapp/dist"
step 600 npm ci --prefix "$dapp" --no-audit --no-fund --prefer-offline --loglevel=error
# The tarball as the dapp's own dependency, without writing it into the copied lock file (whose
# integrity would pin one build).
step 300 npm install --prefix "$dapp" --no-save --no-audit --no-fund --prefer-offline --loglevel=error "$tarball"

say "throwaway dapp: tsc (the package's declarations), esbuild bundle"
step 120 "$dapp/node_modules/.bin/tsc" -p "$dapp"
# The declarations themselves, strictly (the dapp's check skips library files).
step 120 "$dapp/node_modules/.bin/tsc" --ignoreConfig --noEmit --strict --target ES2022 --module ESNext \
    --moduleResolution bundler --lib ES2022,DOM --types "" "$dapp/node_modules/@shroud-rpc/client/index.d.ts"
# esbuild leaves `new URL("./x.wasm", import.meta.url)` alone; the dapp imports the package's .wasm
# with the file loader instead, which copies it next to the bundle.
step 120 "$dapp/node_modules/.bin/esbuild" "$dapp/src/app.ts" "$dapp/src/platform.ts" --bundle --format=esm --platform=browser \
    --target=es2022 --minify --loader:.wasm=file --outdir="$dapp/dist" --log-level=warning
ls -l "$dapp/dist" | awk 'NR > 1 { printf "dist/%s: %d bytes\n", $9, $5 }'

say "throwaway dapp in headless Chromium (viem, ethers, web3.js; a wrong pin; one module per platform)"
logged_step "$work/dapp.log" 300 node "$browser/dapp.mjs" --dir "$dapp" --gateway "$gateway_url" \
    --measurement "$measurement" --node "$node_url" --node-log "$work/ganache.log"
dapp_passed=$(awk '/^dapp: [0-9]+ passed, 0 failed$/ { print $2 }' "$work/dapp.log")
[[ -n $dapp_passed ]] || fail "the throwaway dapp did not pass"

say "throwaway dapp under Node $(node --version) (the package's node export)"
# As for the Node wasm tests above: the dev gateway's certificate is self-signed, the calls are
# sealed with OHTTP to keys verified against the pin.
NODE_TLS_REJECT_UNAUTHORIZED=0 logged_step "$work/dapp-node.log" \
    120 node --no-warnings "$dapp/node.mjs" "$gateway_url" "$measurement"
node_checks=$(grep -c '^node [0-9.]*: ' "$work/dapp-node.log" || true)
((node_checks == 4)) || fail "the package under Node: expected 4 checks, got $node_checks"
echo "throwaway dapp: $((dapp_passed + node_checks)) checks passed in $((SECONDS - dapp_started)) s"

total=$((node_passed + chromium_passed + page_passed + dapp_passed + node_checks))
say "done: $node_passed wasm tests under Node, $chromium_passed in Chromium, $page_passed example page test, $dapp_passed dapp checks in Chromium, $node_checks under Node"
echo "shroud-wasm: $total passed, 0 failed"
