// The throwaway dapp (tests/dapp, installed from the packed tarball and bundled by esbuild: see
// tests/run.sh) in headless Chromium against a real gateway and node:
//
//   node dapp.mjs --dir DAPP --gateway https://127.0.0.1:PORT/eth --measurement HEX
//                 --node http://127.0.0.1:PORT --node-log GANACHE_LOG
//
// DAPP holds index.html and dist/ (the bundle and the .wasm esbuild copied). GANACHE_LOG is the
// output of `ganache.mjs --log-calls`: one `rpc METHOD` line per call the node handled, which is
// how this tells that a wrong pin let nothing through. Asserts, printing one line each:
//   - viem through shroudTransport reads a block and sends a transaction (signed in the page,
//     eth_sendRawTransaction) that the node mines, with its receipt, and the one transport
//     connects once for two clients;
//   - ethers' BrowserProvider over client.provider() reads the node's block number;
//   - web3.js 4's BatchRequest (a JSON-RPC array through the EIP-1193 provider) answers each call
//     as the node does;
//   - a pin of another measurement is refused with code 4900 by ShroudClient.connect and by viem
//     (a read and a transaction), the page sends the gateway nothing but attestation GETs, and
//     no call reaches the node;
//   - on the dapp's second page (platform.html, which gives `init` every module's URL), a policy
//     pinning one platform (TDX, SGX or SEV-SNP, plus the gateway's simulated measurement) loads
//     that platform's module and nothing else, and connects; one pinning Nitro alone loads
//     Nitro's and is refused (measurement mismatch); one pinning several platforms loads the
//     all-platform one.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";

import {
  launchChromium,
  nodeCall,
  otherMeasurement,
  serveStatic,
  simulatedPolicy,
} from "./harness.mjs";

const { values: opts } = parseArgs({
  options: {
    dir: { type: "string" },
    gateway: { type: "string" },
    measurement: { type: "string" },
    node: { type: "string" },
    "node-log": { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
  },
});
for (const name of ["dir", "gateway", "measurement", "node", "node-log"]) {
  if (!opts[name]) {
    console.log(`usage: node dapp.mjs --dir DAPP --gateway URL --measurement HEX --node URL --node-log FILE (missing --${name})`);
    process.exit(64);
  }
}

/** ganache's account 0, which the page pays from (its key is in src/app.ts). */
const FUNDED = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1";
/** What the gateway's health checker sends by itself, and the sentinel below. */
const BACKGROUND = new Set(["eth_chainId", "web3_clientVersion"]);

let passed = 0;
let failed = 0;
const check = (ok, line) => {
  if (ok) {
    passed += 1;
    console.log(`dapp: ${line}`);
  } else {
    failed += 1;
    console.log(`dapp: FAIL: ${line}`);
  }
};

/** The methods the node has handled so far, in order. */
async function nodeCalls() {
  const text = await readFile(opts["node-log"], "utf8");
  return text.split("\n").filter((l) => l.startsWith("rpc ")).map((l) => l.slice(4));
}

/**
 * The node's call log up to now: sends a sentinel call straight to the node and waits for its
 * line, so that everything handled before it is in the log.
 */
async function nodeCallsNow() {
  const sentinels = (calls) => calls.filter((m) => m === "web3_clientVersion").length;
  const before = sentinels(await nodeCalls());
  await nodeCall(opts.node, "web3_clientVersion");
  const until = Date.now() + 10_000;
  for (;;) {
    const calls = await nodeCalls();
    if (sentinels(calls) > before) return calls;
    if (Date.now() > until) throw new Error("the node's call log never showed the sentinel call (ganache.mjs --log-calls?)");
    await new Promise((r) => setTimeout(r, 50));
  }
}

const site = await serveStatic(resolve(opts.dir));
const browser = await launchChromium(opts.chromium, "dapp page");
// Every request the page makes to the gateway, as "METHOD PATH".
const gatewayOrigin = new URL(opts.gateway).origin;
let toGateway = [];
browser.page.on("request", (request) => {
  const url = new URL(request.url());
  if (url.origin === gatewayOrigin) toGateway.push(`${request.method()} ${url.pathname}`);
});
const attestations = () => toGateway.filter((r) => r === "GET /.well-known/shroud/attestation").length;
// Every .wasm the page fetches, by file name.
let wasmFetched = [];
browser.page.on("request", (request) => {
  const file = new URL(request.url()).pathname.split("/").pop();
  if (file.endsWith(".wasm")) wasmFetched.push(file);
});

try {
  const { page } = browser;
  await page.goto(`${site.origin}/index.html`);
  await page.waitForSelector("body[data-state=ready], body[data-state=error]");
  if ((await page.getAttribute("body", "data-state")) !== "ready") {
    throw new Error(`the dapp did not load: ${await page.textContent("#log")}`);
  }
  const good = { url: opts.gateway, policy: simulatedPolicy(opts.measurement) };

  // viem: a block, a transaction, its receipt.
  const sentBefore = (await nodeCallsNow()).filter((m) => m === "eth_sendRawTransaction").length;
  toGateway = [];
  const viem = await page.evaluate((config) => window.dapp.viem(config), good);
  const calls = await nodeCallsNow();
  const sent = calls.filter((m) => m === "eth_sendRawTransaction").length - sentBefore;
  const mined = await nodeCall(opts.node, "eth_getTransactionReceipt", [viem.hash]);
  const tx = await nodeCall(opts.node, "eth_getTransactionByHash", [viem.hash]);
  check(
    viem.receiptStatus === "success" &&
      mined?.status === "0x1" &&
      Number(mined.blockNumber) === viem.receiptBlock &&
      tx?.from?.toLowerCase() === FUNDED.toLowerCase() &&
      sent === 1,
    `viem (shroudTransport): block ${viem.blockNumber} ${viem.blockHash.slice(0, 18)}…, then transaction ${viem.hash.slice(0, 18)}… ` +
      `signed in the page, relayed (${sent} eth_sendRawTransaction at the node) and mined in block ${Number(mined?.blockNumber)}, ` +
      `receipt ${viem.receiptStatus}`,
  );
  check(
    attestations() === 1,
    `viem: one shroudTransport for a public and a wallet client connected ${attestations()} time(s) (attestation GETs), on the first request`,
  );

  // ethers: the block number, as the node reports it.
  const ethers = await page.evaluate(([config, hash]) => window.dapp.ethers(config, hash), [good, viem.hash]);
  const nodeBlock = Number(await nodeCall(opts.node, "eth_blockNumber"));
  check(
    ethers.blockNumber === nodeBlock && ethers.chainId === 1337 && ethers.receiptStatus === 1,
    `ethers (new BrowserProvider(client.provider())): block number ${ethers.blockNumber}, the node's ${nodeBlock}; chain ${ethers.chainId}; viem's transaction has status ${ethers.receiptStatus}`,
  );

  // web3.js: a BatchRequest, each answer as the node gives it.
  const batch = await page.evaluate((config) => window.dapp.web3(config), good);
  const expected = {
    1: await nodeCall(opts.node, "eth_blockNumber"),
    2: await nodeCall(opts.node, "eth_chainId"),
    3: await nodeCall(opts.node, "eth_getBalance", ["0x95cED938F7991cd0dFcb48F0a06a40FA1aF46EBC", "latest"]),
  };
  check(
    batch.length === 3 && batch.every((a) => a.error === undefined && a.result === expected[a.id]),
    `web3.js 4 BatchRequest: ${batch.length} calls in one batch, ${batch.filter((a) => a.result !== undefined).length} results ` +
      `(block ${Number(expected[1])}, chain ${Number(expected[2])}, balance ${BigInt(expected[3])} wei), each as the node answers`,
  );

  // A wrong pin: refused with 4900, nothing sent to the gateway but the attestation GETs, and
  // nothing reaching the node.
  const wrong = { url: opts.gateway, policy: simulatedPolicy(otherMeasurement(opts.measurement)) };
  const blockBefore = await nodeCall(opts.node, "eth_blockNumber");
  const nonceBefore = await nodeCall(opts.node, "eth_getTransactionCount", [FUNDED, "latest"]);
  const before = (await nodeCallsNow()).length;
  toGateway = [];
  const outcomes = await page.evaluate((config) => window.dapp.wrongPin(config), wrong);
  const after = await nodeCallsNow();
  const reached = after.slice(before).filter((m) => !BACKGROUND.has(m));
  const blockAfter = await nodeCall(opts.node, "eth_blockNumber");
  const nonceAfter = await nodeCall(opts.node, "eth_getTransactionCount", [FUNDED, "latest"]);
  const refused = outcomes.filter((o) => o.code === 4900 && /measurement mismatch/.test(o.message));
  check(
    outcomes.length === 3 && refused.length === 3,
    `wrong pin (another measurement): refused with code 4900 (measurement mismatch) by ${refused.map((o) => o.what).join(", ")}` +
      (refused.length === outcomes.length ? "" : `; not refused as such: ${JSON.stringify(outcomes.filter((o) => !refused.includes(o)))}`),
  );
  const posts = toGateway.filter((r) => !r.startsWith("GET /.well-known/shroud/attestation"));
  check(
    posts.length === 0 && reached.length === 0 && blockAfter === blockBefore && nonceAfter === nonceBefore,
    `wrong pin: the page sent the gateway ${toGateway.length - posts.length} attestation GET(s) and ${posts.length} other request(s); ` +
      `calls that reached the node: ${reached.length}${reached.length ? ` (${reached.join(", ")})` : ""} ` +
      `of ${after.length - before} it logged meanwhile (the rest: health probes, the sentinel); ` +
      `block ${Number(blockBefore)} -> ${Number(blockAfter)}, account 0's nonce ${Number(nonceBefore)} -> ${Number(nonceAfter)}`,
  );

  // One module per platform: the page fetches only the module its policy needs. esbuild names
  // the copies NAME-HASH.wasm.
  await page.goto(`${site.origin}/platform.html`);
  await page.waitForSelector("body[data-state=ready]");
  const rule = (platform, fields) =>
    `[[accept]]\nplatform = "${platform}"\n${fields.map((f) => `${f} = "${"ab".repeat(48)}"\n`).join("")}`;
  const tdx = rule("tdx", ["mrtd", "rtmr0", "rtmr1", "rtmr2"]);
  const nitro = rule("nitro", ["pcr0", "pcr1", "pcr2"]);
  const sgx = `[[accept]]\nplatform = "sgx"\nmrenclave = "${"ab".repeat(32)}"\n`;
  const sevSnp = rule("sev-snp", ["measurement"]);
  const simulated = simulatedPolicy(opts.measurement);
  const modules = () => wasmFetched.map((f) => f.replace(/-[A-Z0-9]+\.wasm$/, ".wasm"));
  for (const [what, policy, expected, connects] of [
    ["TDX (and the simulated gateway)", `${tdx}${simulated}`, "shroud_wasm_tdx_bg.wasm", true],
    ["SGX (and the simulated gateway)", `${sgx}${simulated}`, "shroud_wasm_sgx_bg.wasm", true],
    ["SEV-SNP (and the simulated gateway)", `${simulated}${sevSnp}`, "shroud_wasm_sev-snp_bg.wasm", true],
    ["Nitro alone", nitro, "shroud_wasm_nitro_bg.wasm", false],
    ["TDX, Nitro and the simulated gateway", `${tdx}${nitro}${simulated}`, "shroud_wasm_bg.wasm", true],
  ]) {
    wasmFetched = [];
    const outcome = await page.evaluate((config) => window.platforms.connect(config), { url: opts.gateway, policy });
    const fetched = modules();
    const ok = connects
      ? outcome.platform === "simulated" && /^0x[0-9a-f]+$/.test(outcome.block)
      : outcome.code === 4900 && /measurement mismatch/.test(outcome.message);
    check(
      ok && fetched.length === 1 && fetched[0] === expected,
      `a policy pinning ${what} loads ${fetched.join(", ") || "no module"} (expected ${expected} alone) and ` +
        (connects ? `connects (verdict ${outcome.platform}, block ${outcome.block})` : `is refused: ${outcome.code} ${outcome.message?.slice(0, 90)}…`),
    );
  }
} catch (error) {
  failed += 1;
  console.log(`dapp: FAIL: ${error.stack ?? error}`);
} finally {
  await browser.close();
  await site.close();
}
console.log(`dapp: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
