// The example page (wasm-client/examples) in headless Chromium against a real gateway:
// the npm package's ShroudClient -> its EIP-1193 provider -> OHTTP -> shroud-gateway --dev ->
// the node.
//
//   node run.mjs --gateway https://127.0.0.1:PORT/eth --measurement HEX --node http://127.0.0.1:PORT
//   node run.mjs --page 'http://127.0.0.1:8000/?gateway=…&measurement=HEX&simulated=1' --node URL
//
// The first form serves examples/ itself on 127.0.0.1 at a port the kernel picks (examples/pkg
// must hold the unpacked package: tests/run.sh puts it there); the second opens a page that is
// served already, at the URL examples/README.md gives (tests/examples_readme.py). Passes when the
// page shows the block number that the node itself reports, and refuses the same page with a pin
// of another measurement, showing no block.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { launchChromium, nodeCall, otherMeasurement, serveStatic } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const examples = join(here, "..", "..", "examples");

const { values: opts } = parseArgs({
  options: {
    gateway: { type: "string" },
    measurement: { type: "string" },
    page: { type: "string" },
    node: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    // A PNG of the page once it shows the block number, to look at.
    screenshot: { type: "string" },
  },
});
const needed = opts.page ? ["node"] : ["gateway", "measurement", "node"];
for (const name of needed) {
  if (!opts[name]) {
    console.log("usage: node run.mjs (--gateway URL --measurement HEX | --page URL) --node URL");
    console.log(`(missing --${name})`);
    process.exit(64);
  }
}

let site;
let page;
if (opts.page) {
  page = new URL(opts.page);
} else {
  site = await serveStatic(examples);
  page = new URL(`${site.origin}/index.html`);
  page.search = new URLSearchParams({ gateway: opts.gateway, measurement: opts.measurement, simulated: "1" });
}
const measurement = page.searchParams.get("measurement");
if (!/^[0-9a-f]{96}$/.test(measurement ?? "")) {
  console.log(`FAIL: the page URL carries no measurement=HEX (96 hex digits): ${page}`);
  process.exit(1);
}

// What the node says, asked directly; the page must show the same through the gateway.
const expected = BigInt(await nodeCall(opts.node, "eth_blockNumber")).toString();

let browser;
let failed = false;
/** Opens `url`; resolves to the page's final state, status line and block. */
async function open(url) {
  await browser.page.goto(url.toString());
  await browser.page.waitForSelector("body[data-state=done], body[data-state=error]");
  return {
    state: await browser.page.getAttribute("body", "data-state"),
    status: await browser.page.textContent("#status"),
    block: (await browser.page.textContent("#block")).trim(),
  };
}
try {
  browser = await launchChromium(opts.chromium, "example page");
  const shown = await open(page);
  console.log(`page: ${shown.status}`);
  if (shown.state !== "done") {
    failed = true;
    console.log(`FAIL: the page did not show a block number: ${shown.status}`);
  } else if (shown.block !== expected) {
    failed = true;
    console.log(`FAIL: the page shows block ${shown.block}, the node reports ${expected}`);
  } else {
    console.log(`block number shown by the page (ShroudClient -> EIP-1193 -> OHTTP -> gateway -> node): ${shown.block}`);
  }
  if (opts.screenshot) await browser.page.screenshot({ path: opts.screenshot, fullPage: true });

  // The wrong pin: the page must refuse, naming the mismatch, and show no block.
  const wrong = new URL(page);
  wrong.searchParams.set("measurement", otherMeasurement(measurement));
  const refused = await open(wrong);
  if (refused.state !== "error" || !refused.status.includes("measurement mismatch") || refused.block !== "–") {
    failed = true;
    console.log(`FAIL: a wrong pin was not refused as a measurement mismatch (block shown: ${refused.block}): ${refused.status}`);
  } else {
    console.log(`wrong pin refused: ${refused.status.slice(0, 120)}…`);
  }
} catch (error) {
  failed = true;
  console.log(`FAIL: ${error.stack ?? error}`);
} finally {
  await browser?.close();
  await site?.close();
}
console.log(failed ? "0 passed, 1 failed" : "1 passed, 0 failed");
process.exit(failed ? 1 : 0);
