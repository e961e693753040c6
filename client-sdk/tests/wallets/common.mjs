// Shared by the wallet scripts (ethers.mjs, viem.mjs, web3js.mjs): the dev chain's facts and the
// proxy URL. web3py.py repeats the chain id, key and value: keep them in step.

/** Ganache's chain id (`--chain.chainId 1337`, also what ganache-node.mjs sets). */
export const CHAIN_ID = 1337;

/** Account 0 of ganache's `--wallet.deterministic` wallet, funded with 1000 ETH. */
export const FUNDED_KEY = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d";
export const FUNDED_ADDRESS = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1";

/** What each script sends: 0.25 ETH, in wei. */
export const VALUE_WEI = 250_000_000_000_000_000n;

/**
 * The URL to use: the first argument, else env `SHROUD_PROXY_URL` (a `shroud proxy`), else
 * `http://127.0.0.1:8545`. Only loopback, or an https URL on a `.test` name (acme.mjs: the
 * gateway's public certificate, with the name resolved to 127.0.0.1): these scripts talk to local
 * processes and nothing else.
 */
export function proxyUrl() {
  return loopbackUrl(process.argv[2] ?? process.env.SHROUD_PROXY_URL ?? "http://127.0.0.1:8545");
}

/**
 * `text` as a URL, refused unless it names a loopback host or, over https, a name under `.test`
 * (RFC 6761: never delegated on the public internet, so it reaches only what the test resolves).
 */
export function loopbackUrl(text) {
  const url = new URL(text);
  const loopback = url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
  const testName = url.protocol === "https:" && url.hostname.endsWith(".test");
  if (!loopback && !testName) {
    throw new Error(`refusing non-loopback URL ${url}`);
  }
  return url.toString();
}

/** Throws with `message` unless `condition`. */
export function check(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/**
 * Runs `main`, printing the error and exiting 1 on failure; exits 0 on success, so that a timer a
 * library left behind (web3.js leaves some after a failed send) cannot keep the script alive.
 */
export function run(name, main) {
  main().then(
    () => {
      console.log(`${name}: ok`);
      process.exit(0);
    },
    (error) => {
      console.error(`${name}: FAILED: ${error?.stack ?? error}`);
      process.exit(1);
    },
  );
}

/**
 * What `shroud proxy` answers when the gateway fails its pins (client-sdk/src/proxy.rs,
 * CODE_UNTRUSTED_GATEWAY; docs/user-guide.md): this code, a message naming the pin and
 * measurement mismatch, and `data: { kind: "pin-mismatch", forwarded: false }`.
 */
export const CODE_UNTRUSTED_GATEWAY = -32001;
export const PIN_MISMATCH_MESSAGE = /^shroud proxy: gateway not trusted, nothing was sent: pin mismatch: measurement mismatch/;

// ---- WebSocket subscriptions (viem-ws.mjs, ethers-ws.mjs) ----

/**
 * The proxy's WebSocket URL for chain `eth`: `ws://` on the same address as the proxy's
 * `http://` URL (the proxy takes WebSocket upgrades on its one port).
 */
export function proxyWsUrl() {
  const url = new URL(proxyUrl());
  url.protocol = "ws:";
  url.pathname = "/eth";
  return url.toString();
}

/** The gateway's metrics URL, from env `SHROUD_METRICS_URL` (run.mjs sets it); loopback only. */
export function metricsUrl() {
  const text = process.env.SHROUD_METRICS_URL;
  if (!text) throw new Error("SHROUD_METRICS_URL is not set (the gateway's --metrics-listen address)");
  return loopbackUrl(text);
}

/**
 * `shroud_subscriptions_active{chain="eth",kind=...}` of the gateway now, per kind: the
 * subscriptions the gateway holds, so that a test knows when its eth_subscribe took effect and
 * that an eth_unsubscribe (not only the library forgetting a callback) ended one.
 */
export async function activeSubscriptions() {
  const response = await fetch(new URL("/metrics", metricsUrl()), { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const counts = { newHeads: 0, logs: 0 };
  for (const line of text.split("\n")) {
    if (!line.startsWith("shroud_subscriptions_active{") || !line.includes('chain="eth"')) continue;
    const kind = /kind="([^"]+)"/.exec(line)?.[1];
    if (kind in counts) counts[kind] = Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return counts;
}

/** Resolves once `condition()` (sync or async) is true, checking every 50 ms; throws after `ms`. */
export async function waitUntil(what, condition, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** How long a test listens to be sure nothing more arrives: several of the gateway's polls (250 ms with --dev). */
export const QUIET_MS = 1500;

/** The event the test contract emits: `Ping(uint256 value)`, value not indexed. */
export const PING_EVENT = "event Ping(uint256 value)";
export const PING_SIGNATURE = "Ping(uint256)";

/** What each ping logs: 42, as the 32-byte ABI word that is both the calldata and the log's data. */
export const PING_VALUE = 42n;
export const PING_DATA = `0x${PING_VALUE.toString(16).padStart(64, "0")}`;

/**
 * Creation code of a contract whose every call emits LOG1(topic, calldata), hand-assembled so that
 * no compiler is needed: called with 32 bytes, it emits `Ping(uint256)` for them when `topic` is
 * that event's signature hash.
 *
 *   init (11 bytes):    PUSH1 0x2c DUP1 PUSH1 0x0b PUSH1 0 CODECOPY PUSH1 0 RETURN
 *   runtime (44 bytes): CALLDATASIZE PUSH1 0 PUSH1 0 CALLDATACOPY PUSH32 topic
 *                       CALLDATASIZE PUSH1 0 LOG1 STOP
 */
export function pingContractBytecode(topic) {
  const hex = topic.replace(/^0x/, "");
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new Error(`not a 32-byte topic: ${topic}`);
  return `0x602c80600b6000396000f3` + `3660006000377f${hex}366000a100`;
}
