// End-to-end harness: real wallet libraries (ethers 6, viem 2, web3.js 4 from npm; web3.py from
// PyPI) through `shroud proxy` -> `shroud-gateway --dev` -> ganache, all on 127.0.0.1 with ports
// the OS picks.
//
//   1. ganache (ganache-node.mjs: deterministic wallet, chain id 1337, quiet but for one
//      `rpc METHOD` line per call, which this harness counts);
//   2. shroud-gateway --dev --upstream eth=GANACHE, reading its `listening on` and `measurement`
//      lines;
//   3. shroud proxy pinned to that measurement;
//   4. ethers.mjs, viem.mjs, web3js.mjs and web3py.py against the proxy (reads, a locally signed
//      transfer with its receipt; web3.js and web3.py also a batch);
//   5. a second shroud proxy with a wrong pin: eth_blockNumber must come back as a JSON-RPC error
//      naming the pin mismatch, then web3js.mjs and web3py.py in --wrong-pin mode must see that
//      error as their library raises it, and ganache must see none of these calls.
// Every child is killed at the end, on failure and on timeout (the whole run is bounded). Exits
// 0 only when every step passed; each step's time is printed.
//
//     npm ci --prefix client-sdk/tests/wallets
//     python3 -m pip install -r client-sdk/tests/wallets/requirements.txt
//     cargo build -p shroud-gateway -p shroud-client
//     node client-sdk/tests/wallets/run.mjs
//
// Env: SHROUD_GATEWAY_BIN, SHROUD_BIN (default ${CARGO_TARGET_DIR:-<repo>/target}/debug/...),
// SHROUD_PYTHON (default python3, with requirements.txt installed), SHROUD_WALLETS_TIMEOUT_SECS
// (default 120).

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..", "..");
const TARGET = path.resolve(process.env.CARGO_TARGET_DIR || path.join(REPO, "target"));
const GATEWAY_BIN = process.env.SHROUD_GATEWAY_BIN || path.join(TARGET, "debug", "shroud-gateway");
const SHROUD_BIN = process.env.SHROUD_BIN || path.join(TARGET, "debug", "shroud");
const PYTHON = process.env.SHROUD_PYTHON || "python3";
const TOTAL_TIMEOUT_MS = 1000 * Number(process.env.SHROUD_WALLETS_TIMEOUT_SECS || 120);
/** How long a service may take to print its address, and a script to finish. */
const START_TIMEOUT_MS = 30_000;
const SCRIPT_TIMEOUT_MS = 60_000;
/** Lines of a service's output kept to show when something fails. */
const TAIL_LINES = 40;

const children = new Set();
const results = [];

function say(line) {
  console.log(`run: ${line}`);
}

/** A child process with its output captured line by line. */
class Service {
  constructor(name, command, args, { echo = false, env = process.env } = {}) {
    this.name = name;
    this.tail = [];
    this.waiters = [];
    this.exited = null;
    this.child = spawn(command, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    children.add(this.child);
    this.exit = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        this.exited = { code, signal };
        children.delete(this.child);
        for (const waiter of this.waiters) waiter.fail(new Error(`${name} exited (${describeExit(this.exited)})`));
        this.waiters = [];
        resolve(this.exited);
      });
    });
    this.child.on("error", (error) => {
      for (const waiter of this.waiters) waiter.fail(new Error(`${name}: ${error.message}`));
      this.waiters = [];
    });
    for (const [stream, label] of [
      [this.child.stdout, ""],
      [this.child.stderr, "stderr: "],
    ]) {
      createInterface({ input: stream }).on("line", (line) => {
        if (echo) console.log(line);
        this.onLine(label, line);
      });
    }
  }

  onLine(label, line) {
    this.tail.push(`${label}${line}`);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    if (label !== "") return;
    this.waiters = this.waiters.filter((waiter) => {
      const match = waiter.pattern.exec(line);
      if (match) waiter.done(match);
      return !match;
    });
  }

  /** The first stdout line from now on matching `pattern` (its match), within `ms`. */
  waitFor(pattern, ms = START_TIMEOUT_MS) {
    if (this.exited) return Promise.reject(new Error(`${this.name} exited (${describeExit(this.exited)})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.name}: no line matching ${pattern} within ${ms / 1000} s`));
      }, ms);
      const waiter = {
        pattern,
        done: (match) => {
          clearTimeout(timer);
          resolve(match);
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** SIGTERM, then SIGKILL after a grace period. */
  async stop() {
    if (this.exited) return;
    this.child.kill("SIGTERM");
    const grace = new Promise((resolve) => setTimeout(resolve, 3000, "grace"));
    if ((await Promise.race([this.exit, grace])) === "grace") {
      this.child.kill("SIGKILL");
      await this.exit;
    }
  }

  printTail() {
    console.log(`---- last output of ${this.name} ----`);
    for (const line of this.tail) console.log(`  ${line}`);
    console.log(`---- end of ${this.name} ----`);
  }
}

/** `[method, count]` pairs as an object in method order, so two compare as JSON. */
function sortedCounts(entries) {
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function describeExit({ code, signal }) {
  return signal ? `signal ${signal}` : `code ${code}`;
}

/** Ganache with per-method call counts from its `rpc METHOD` lines. */
class Ganache extends Service {
  constructor() {
    // --exit-with-stdin: ganache dies with this harness even if the harness is killed outright.
    super("ganache", process.execPath, [path.join(HERE, "ganache-node.mjs"), "--log-calls", "--exit-with-stdin"]);
    this.calls = new Map();
  }

  onLine(label, line) {
    const call = label === "" && /^rpc (\S+)$/.exec(line);
    if (call) {
      this.calls.set(call[1], (this.calls.get(call[1]) ?? 0) + 1);
      // Waiters may be waiting on a call; the tail would only fill up with them.
      this.waiters = this.waiters.filter((waiter) => {
        const match = waiter.pattern.exec(line);
        if (match) waiter.done(match);
        return !match;
      });
      return;
    }
    super.onLine(label, line);
  }

  /** Calls per method so far, without the gateway's `eth_chainId` health probes. */
  snapshot() {
    return sortedCounts([...this.calls].filter(([method]) => method !== "eth_chainId"));
  }
}

/** Runs `name` as a step: records pass or fail and its time, never throws. */
async function step(name, body) {
  say(`---- ${name} ----`);
  const started = performance.now();
  const took = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  try {
    const detail = await body();
    results.push({ name, ok: true, detail: detail ? `${detail} (${took()})` : took() });
    say(`PASS ${name} (${took()})`);
  } catch (error) {
    results.push({ name, ok: false, detail: `${error.message} (${took()})` });
    say(`FAIL ${name}: ${error.message} (${took()})`);
  }
}

/**
 * Runs a wallet script (`name.mjs` with Node, `name.py` with Python) with `args` and `env` added
 * to the environment, echoing its output; rejects unless it exits 0.
 */
async function runScript(script, args = [], env = {}) {
  const [command, first] = script.endsWith(".py") ? [PYTHON, ["-u"]] : [process.execPath, []];
  const service = new Service(script, command, [...first, path.join(HERE, script), ...args], {
    echo: true,
    env: { ...process.env, ...env },
  });
  const timeout = new Promise((resolve) => setTimeout(resolve, SCRIPT_TIMEOUT_MS, "timeout"));
  const outcome = await Promise.race([service.exit, timeout]);
  if (outcome === "timeout") {
    await service.stop();
    throw new Error(`${script} did not finish within ${SCRIPT_TIMEOUT_MS / 1000} s`);
  }
  if (outcome.code !== 0) throw new Error(`${script} exited (${describeExit(outcome)})`);
  const hash = service.tail.map((line) => /eth_sendRawTransaction -> (0x[0-9a-f]{64})/.exec(line)).find(Boolean);
  return hash ? `tx ${hash[1]}` : "";
}

async function rpc(url, method, params = []) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    throw new Error(`${method}: HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`);
  }
}

function version(pkg) {
  try {
    return JSON.parse(readFileSync(path.join(HERE, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return "missing";
  }
}

/** `web3 X, eth-account Y` as PYTHON imports them, or null when it cannot. */
function pythonVersions() {
  const probe = spawnSync(
    PYTHON,
    [
      "-c",
      "import sys, web3, eth_account; from importlib.metadata import version; " +
        "print(f\"python {sys.version.split()[0]}, web3.py {version('web3')}, eth-account {version('eth-account')}\")",
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  return probe.status === 0 ? probe.stdout.trim() : null;
}

function preflight() {
  const missing = [];
  for (const pkg of ["ganache", "ethers", "viem", "web3"]) {
    if (!existsSync(path.join(HERE, "node_modules", pkg))) missing.push(`node_modules/${pkg} (npm ci --prefix client-sdk/tests/wallets)`);
  }
  if (pythonVersions() === null) {
    missing.push(`web3.py and eth-account for ${PYTHON} (python3 -m pip install -r client-sdk/tests/wallets/requirements.txt, or set SHROUD_PYTHON)`);
  }
  for (const bin of [GATEWAY_BIN, SHROUD_BIN]) {
    if (!existsSync(bin)) missing.push(`${bin} (cargo build -p shroud-gateway -p shroud-client, or set SHROUD_GATEWAY_BIN / SHROUD_BIN)`);
  }
  return missing;
}

async function main() {
  const missing = preflight();
  if (missing.length > 0) {
    for (const what of missing) say(`missing: ${what}`);
    results.push({ name: "prerequisites", ok: false, detail: `missing ${missing.length}` });
    return;
  }
  say(
    `node ${process.version}, ethers ${version("ethers")}, viem ${version("viem")}, web3.js ${version("web3")}, ganache ${version("ganache")}`,
  );
  say(pythonVersions());
  say(`gateway ${GATEWAY_BIN}`);
  say(`shroud  ${SHROUD_BIN}`);

  const ganache = new Ganache();
  const services = [ganache];
  try {
    const [, ganacheUrl] = await ganache.waitFor(/^ganache listening on (http:\/\/127\.0\.0\.1:\d+)$/);
    say(`ganache at ${ganacheUrl}`);

    const gateway = new Service("shroud-gateway", GATEWAY_BIN, [
      "--dev",
      "--upstream",
      `eth=${ganacheUrl}`,
      "--listen",
      "127.0.0.1:0",
      "--metrics-listen",
      "127.0.0.1:0",
    ]);
    services.push(gateway);
    const listening = gateway.waitFor(/^shroud-gateway listening on https:\/\/(127\.0\.0\.1:\d+)$/);
    const measured = gateway.waitFor(/^measurement: simulated ([0-9a-f]{96})$/);
    const [[, gatewayAddr], [, measurement]] = await Promise.all([listening, measured]);
    const gatewayUrl = `https://${gatewayAddr}/eth`;
    say(`gateway at ${gatewayUrl}, measurement simulated ${measurement}`);

    const pin = `simulated:measurement=${measurement}`;
    const proxy = new Service("shroud proxy", SHROUD_BIN, [
      "proxy",
      "--listen",
      "127.0.0.1:0",
      "--gateway",
      gatewayUrl,
      "--pin",
      pin,
      "--allow-simulated",
    ]);
    services.push(proxy);
    const [, proxyUrl] = await proxy.waitFor(/^shroud proxy listening on (http:\/\/127\.0\.0\.1:\d+)\/?$/);
    say(`proxy at ${proxyUrl} (pin ${pin})`);

    const env = { SHROUD_PROXY_URL: proxyUrl };
    await step("ethers 6 through shroud proxy", () => runScript("ethers.mjs", [], env));
    await step("viem 2 through shroud proxy", () => runScript("viem.mjs", [], env));
    await step("web3.js 4 through shroud proxy: reads, signed transfer, BatchRequest", () =>
      runScript("web3js.mjs", [], env),
    );
    await step("web3.py through shroud proxy: reads, signed transfer, batch_requests", () =>
      runScript("web3py.py", [], env),
    );

    // The real measurement with its first byte flipped: a well-formed pin for another build.
    const flipped = (parseInt(measurement.slice(0, 2), 16) ^ 0xff).toString(16).padStart(2, "0");
    const wrongPin = `simulated:measurement=${flipped}${measurement.slice(2)}`;
    let wrongUrl = null;
    /** The wrong-pin proxy, started by the first step that needs it. */
    const wrongPinProxy = async () => {
      if (wrongUrl !== null) return wrongUrl;
      const wrong = new Service("shroud proxy (wrong pin)", SHROUD_BIN, [
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--gateway",
        gatewayUrl,
        "--pin",
        wrongPin,
        "--allow-simulated",
      ]);
      services.push(wrong);
      [, wrongUrl] = await wrong.waitFor(/^shroud proxy listening on (http:\/\/127\.0\.0\.1:\d+)\/?$/);
      say(`wrong-pin proxy at ${wrongUrl} (pin ${wrongPin})`);
      return wrongUrl;
    };

    /**
     * Runs `body`, then checks that ganache saw none of its calls: a sentinel call of another
     * method through the good proxy, sent after `body` is done: ganache logs calls in the order it
     * handles them, so once the sentinel's line is in, a forwarded call would have been counted.
     * Only the sentinel may show up.
     */
    const nothingReachesGanache = async (body) => {
      const before = ganache.snapshot();
      const detail = await body();
      const sentinelSeen = ganache.waitFor(/^rpc web3_clientVersion$/, 10_000);
      const sentinel = await rpc(proxyUrl, "web3_clientVersion");
      if (typeof sentinel.body.result !== "string") throw new Error(`sentinel failed: ${JSON.stringify(sentinel.body)}`);
      await sentinelSeen;
      const after = ganache.snapshot();
      const expected = sortedCounts(
        Object.entries({ ...before, web3_clientVersion: (before.web3_clientVersion ?? 0) + 1 }),
      );
      say(`ganache calls before: ${JSON.stringify(before)}`);
      say(`ganache calls after:  ${JSON.stringify(after)} (the sentinel web3_clientVersion is the one new call)`);
      if (JSON.stringify(after) !== JSON.stringify(expected)) {
        throw new Error(`ganache saw more than the sentinel: before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
      }
      return detail;
    };

    await step("wrong pin: refused, nothing reaches ganache", async () => {
      const url = await wrongPinProxy();
      return nothingReachesGanache(async () => {
        const { status, body } = await rpc(url, "eth_blockNumber");
        say(`wrong-pin answer: HTTP ${status} ${JSON.stringify(body)}`);
        if (body.result !== undefined) throw new Error(`got a result through a wrong pin: ${JSON.stringify(body)}`);
        const message = String(body.error?.message ?? "");
        if (!/pin mismatch/i.test(message) || !/measurement/i.test(message)) {
          throw new Error(`the error does not name the pin/measurement mismatch: ${JSON.stringify(body.error)}`);
        }
        return `error ${body.error.code}: ${message}`;
      });
    });
    await step("wrong pin: web3.js 4 raises the proxy's error, nothing reaches ganache", async () => {
      const url = await wrongPinProxy();
      return nothingReachesGanache(() => runScript("web3js.mjs", ["--wrong-pin", url]));
    });
    await step("wrong pin: web3.py raises the proxy's error, nothing reaches ganache", async () => {
      const url = await wrongPinProxy();
      return nothingReachesGanache(() => runScript("web3py.py", ["--wrong-pin", url]));
    });
  } catch (error) {
    results.push({ name: "setup", ok: false, detail: error.message });
    say(`FAIL setup: ${error.message}`);
  } finally {
    if (results.some((r) => !r.ok)) for (const service of services) service.printTail();
    await Promise.all(services.map((service) => service.stop()));
  }
}

function summary() {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log("");
  console.log("summary:");
  for (const r of results) console.log(`  ${r.ok ? "PASS" : "FAIL"}  ${r.name}${r.detail ? ` — ${r.detail}` : ""}`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

function killAll() {
  for (const child of children) child.kill("SIGKILL");
}

process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    say(`${signal}: stopping`);
    killAll();
    process.exit(130);
  });
}
const deadline = setTimeout(() => {
  say(`timeout: the run took more than ${TOTAL_TIMEOUT_MS / 1000} s`);
  results.push({ name: "timeout", ok: false, detail: `over ${TOTAL_TIMEOUT_MS / 1000} s` });
  killAll();
  process.exit(summary());
}, TOTAL_TIMEOUT_MS);

await main();
clearTimeout(deadline);
process.exit(summary());
