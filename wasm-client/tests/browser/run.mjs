// The example page (wasm-client/examples) in headless Chromium against a real gateway:
// viem -> the wasm client's EIP-1193 provider -> OHTTP -> shroud-gateway --dev -> ganache.
//
//   node run.mjs --gateway https://127.0.0.1:PORT/eth --measurement HEX --node http://127.0.0.1:PORT
//
// examples/pkg must hold the `wasm-bindgen --target web` output (tests/run.sh puts it there). This
// bundles viem into examples/vendor/viem.js with esbuild (both folders are git-ignored, and with
// them examples/ is a static site), serves examples/ on 127.0.0.1 at a port the kernel picks, and
// passes when the page shows the block number that the node itself reports, and refuses a wrong
// pin. tests/run.sh starts the gateway and the node, and calls this.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { build } from "esbuild";
import { chromium } from "playwright-core";

const TIMEOUT_MS = 60_000;
const here = dirname(fileURLToPath(import.meta.url));
const examples = join(here, "..", "..", "examples");

const { values: opts } = parseArgs({
  options: {
    gateway: { type: "string" },
    measurement: { type: "string" },
    node: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    // A PNG of the page once it shows the block number, to look at.
    screenshot: { type: "string" },
  },
});
for (const name of ["gateway", "measurement", "node"]) {
  if (!opts[name]) {
    console.log(`usage: node run.mjs --gateway URL --measurement HEX --node URL (missing --${name})`);
    process.exit(64);
  }
}

// viem as one ES module, for the page's import map.
await build({
  stdin: { contents: 'export { createPublicClient, custom } from "viem";', resolveDir: here },
  bundle: true,
  format: "esm",
  minify: true,
  outfile: join(examples, "vendor", "viem.js"),
  logLevel: "warning",
});

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  // `WebAssembly.instantiateStreaming` insists on this type.
  ".wasm": "application/wasm",
};

const server = createServer(async (request, response) => {
  const path = new URL(request.url, "http://127.0.0.1").pathname;
  const file = normalize(join(examples, path === "/" ? "index.html" : decodeURIComponent(path)));
  const type = types[extname(file)];
  if (!file.startsWith(examples + sep) || !type) {
    response.writeHead(404).end();
    return;
  }
  try {
    const body = await readFile(file);
    response.writeHead(200, { "content-type": type }).end(body);
  } catch {
    response.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

// What the node says, asked directly; the page must show the same through the gateway.
const direct = await fetch(opts.node, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }),
}).then((r) => r.json());
const expected = BigInt(direct.result).toString();

const userDataDir = await mkdtemp(join(tmpdir(), "shroud-chromium-"));
let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.chromium,
    headless: true,
    // The dev gateway's certificate is self-signed RA-TLS, which no browser trusts. Accepting it
    // costs nothing here: the calls are sealed with OHTTP to keys the page verified in wasm
    // against the pinned measurement, so TLS underneath carries only ciphertext.
    ignoreHTTPSErrors: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--ignore-certificate-errors",
    ],
    timeout: TIMEOUT_MS,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => console.log(`page console.${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => console.log(`page error: ${error.message}`));

  const policy = `[[accept]]\nplatform = "simulated"\nmeasurement = "${opts.measurement}"\n`;
  const query = new URLSearchParams({ gateway: opts.gateway, policy, simulated: "1" });
  await page.goto(`${origin}/index.html?${query}`, { timeout: TIMEOUT_MS });
  await page.waitForSelector("body[data-state=done], body[data-state=error]", { timeout: TIMEOUT_MS });

  const state = await page.getAttribute("body", "data-state");
  const status = await page.textContent("#status");
  const block = (await page.textContent("#block")).trim();
  console.log(`page: ${status}`);
  if (state !== "done") {
    failed = true;
    console.log(`FAIL: the page did not show a block number: ${status}`);
  } else if (block !== expected) {
    failed = true;
    console.log(`FAIL: the page shows block ${block}, the node reports ${expected}`);
  } else {
    console.log(`block number shown by the page (viem -> EIP-1193 -> OHTTP -> gateway -> node): ${block}`);
  }
  if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });

  // The wrong pin: the page must refuse, naming the mismatch, and show no block.
  const wrong = `[[accept]]\nplatform = "simulated"\nmeasurement = "${"11".repeat(48)}"\n`;
  const refusing = new URLSearchParams({ gateway: opts.gateway, policy: wrong, simulated: "1" });
  await page.goto(`${origin}/index.html?${refusing}`, { timeout: TIMEOUT_MS });
  await page.waitForSelector("body[data-state=done], body[data-state=error]", { timeout: TIMEOUT_MS });
  const refusal = await page.textContent("#status");
  const shown = (await page.textContent("#block")).trim();
  if (
    (await page.getAttribute("body", "data-state")) !== "error" ||
    !refusal.includes("measurement mismatch") ||
    shown !== "–"
  ) {
    failed = true;
    console.log(`FAIL: a wrong pin was not refused as a measurement mismatch (block shown: ${shown}): ${refusal}`);
  } else {
    console.log(`wrong pin refused: ${refusal.slice(0, 120)}…`);
  }
} catch (error) {
  failed = true;
  console.log(`FAIL: ${error.stack ?? error}`);
} finally {
  await context?.close().catch(() => {});
  server.close();
  await rm(userDataDir, { recursive: true, force: true });
}
console.log(failed ? "0 passed, 1 failed" : "1 passed, 0 failed");
process.exit(failed ? 1 : 0);
