// What the end-to-end harnesses (run.mjs, acme.mjs) share: child processes with their output
// captured line by line, ganache with per-method call counts, timed steps, wallet scripts run as
// children, and a summary. Every child started here is killed when the harness exits, on a
// signal, and when the whole run goes over its time (`bound`).

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "..", "..", "..");
export const TARGET = path.resolve(process.env.CARGO_TARGET_DIR || path.join(REPO, "target"));
export const GATEWAY_BIN = process.env.SHROUD_GATEWAY_BIN || path.join(TARGET, "debug", "shroud-gateway");
export const SHROUD_BIN = process.env.SHROUD_BIN || path.join(TARGET, "debug", "shroud");
export const PYTHON = process.env.SHROUD_PYTHON || "python3";
/** How long a service may take to print its address, and a script to finish. */
export const START_TIMEOUT_MS = 30_000;
export const SCRIPT_TIMEOUT_MS = 60_000;
/** Lines of a service's output kept to show when something fails. */
const TAIL_LINES = 40;

const children = new Set();
export const results = [];

let prefix = "run";
/** Names the harness in every line `say` prints. */
export function setName(name) {
  prefix = name;
}

export function say(line) {
  console.log(`${prefix}: ${line}`);
}

export function describeExit({ code, signal }) {
  return signal ? `signal ${signal}` : `code ${code}`;
}

/** A child process with its output captured line by line. */
export class Service {
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
      this.exited ??= { code: null, signal: null, error };
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
    this.waiters = this.waiters.filter((waiter) => {
      if (label !== "" && !waiter.stderr) return true;
      const match = waiter.pattern.exec(line);
      if (match) waiter.done(match);
      return !match;
    });
  }

  /**
   * The first stdout line from now on matching `pattern` (its match), within `ms`; with
   * `stderr: true`, a line of either stream.
   */
  waitFor(pattern, ms = START_TIMEOUT_MS, { stderr = false } = {}) {
    if (this.exited) return Promise.reject(new Error(`${this.name} exited (${describeExit(this.exited)})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.name}: no line matching ${pattern} within ${ms / 1000} s`));
      }, ms);
      const waiter = {
        pattern,
        stderr,
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
export function sortedCounts(entries) {
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Ganache with per-method call counts from its `rpc METHOD` lines. */
export class Ganache extends Service {
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
export async function step(name, body) {
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

/** Records a step that did not run, and why; it neither passes nor fails the run. */
export function skip(name, why) {
  say(`skipped: ${name}: ${why}`);
  results.push({ name, ok: true, skipped: true, detail: `skipped: ${why}` });
}

/**
 * Runs a wallet script (`name.mjs` with Node, `name.py` with Python) with `args` and `env` added
 * to the environment, echoing its output; rejects unless it exits 0. `node` are extra Node
 * options (before the script).
 */
export async function runScript(script, args = [], env = {}, { node = [] } = {}) {
  const [command, first] = script.endsWith(".py") ? [PYTHON, ["-u"]] : [process.execPath, node];
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

export async function rpc(url, method, params = []) {
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

/** The version of an npm package in node_modules, or "missing". */
export function version(pkg) {
  try {
    return JSON.parse(readFileSync(path.join(HERE, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return "missing";
  }
}

/** Prints every step's outcome; 0 when none failed and at least one passed, else 1. */
export function summary() {
  const passed = results.filter((r) => r.ok && !r.skipped).length;
  const skipped = results.filter((r) => r.skipped).length;
  const failed = results.filter((r) => !r.ok).length;
  console.log("");
  console.log("summary:");
  for (const r of results) {
    const mark = r.skipped ? "SKIP" : r.ok ? "PASS" : "FAIL";
    console.log(`  ${mark}  ${r.name}${r.detail ? ` — ${r.detail}` : ""}`);
  }
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

export function killAll() {
  for (const child of children) child.kill("SIGKILL");
}

/**
 * Kills every child on exit and on SIGINT/SIGTERM, and ends the run with a failed `timeout` step
 * after `totalMs`. Returns a function that cancels the deadline.
 */
export function bound(totalMs) {
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      say(`${signal}: stopping`);
      killAll();
      process.exit(130);
    });
  }
  const deadline = setTimeout(() => {
    say(`timeout: the run took more than ${totalMs / 1000} s`);
    results.push({ name: "timeout", ok: false, detail: `over ${totalMs / 1000} s` });
    killAll();
    process.exit(summary());
  }, totalMs);
  return () => clearTimeout(deadline);
}
