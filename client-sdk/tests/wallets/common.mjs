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
