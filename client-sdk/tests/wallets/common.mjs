// Shared by ethers.mjs and viem.mjs: the dev chain's facts and the proxy URL.

/** Ganache's chain id (`--chain.chainId 1337`, also what ganache-node.mjs sets). */
export const CHAIN_ID = 1337;

/** Account 0 of ganache's `--wallet.deterministic` wallet, funded with 1000 ETH. */
export const FUNDED_KEY = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d";
export const FUNDED_ADDRESS = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1";

/** What each script sends: 0.25 ETH, in wei. */
export const VALUE_WEI = 250_000_000_000_000_000n;

/**
 * The `shroud proxy` URL: the first argument, else env `SHROUD_PROXY_URL`. Only loopback: these
 * scripts talk to a local proxy and nothing else.
 */
export function proxyUrl() {
  const url = new URL(process.argv[2] ?? process.env.SHROUD_PROXY_URL ?? "http://127.0.0.1:8545");
  if (url.hostname !== "127.0.0.1" && url.hostname !== "localhost" && url.hostname !== "[::1]") {
    throw new Error(`refusing non-loopback proxy URL ${url}`);
  }
  return url.toString();
}

/** Throws with `message` unless `condition`. */
export function check(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/** Runs `main`, printing the error and exiting 1 on failure. */
export function run(name, main) {
  main().then(
    () => console.log(`${name}: ok`),
    (error) => {
      console.error(`${name}: FAILED: ${error?.stack ?? error}`);
      process.exit(1);
    },
  );
}
