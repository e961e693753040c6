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
//      transfer with its receipt; web3.js and web3.py also a batch); then ethers.mjs again
//      through `shroud proxy --http3` to the gateway's h3 listener (`--h3-listen`, QUIC);
//   5. a second shroud proxy with a wrong pin: eth_blockNumber must come back as a JSON-RPC error
//      naming the pin mismatch, its WebSocket upgrade must be refused (502 with that error), then
//      web3js.mjs and web3py.py in --wrong-pin mode must see that error as their library raises
//      it, and ganache must see none of these calls;
//   6. viem-ws.mjs and ethers-ws.mjs on the proxy's WebSocket (ws://127.0.0.1:PORT/eth):
//      watchBlocks / on("block") see three mined blocks in order, a contract event subscription
//      delivers the log of a contract deployed there, and unsubscribing ends the subscriptions at
//      the gateway (read from its metrics) and stops delivery.
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

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";

import {
  GATEWAY_BIN,
  HERE,
  PYTHON,
  SHROUD_BIN,
  Ganache,
  Service,
  bound,
  results,
  rpc,
  runScript,
  say,
  sortedCounts,
  step,
  summary,
  version,
} from "./harness.mjs";

const TOTAL_TIMEOUT_MS = 1000 * Number(process.env.SHROUD_WALLETS_TIMEOUT_SECS || 180);

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
      // HTTP/3 too, on a UDP port of its own (printed after the pin line).
      "--h3-listen",
      "127.0.0.1:0",
    ]);
    services.push(gateway);
    const listening = gateway.waitFor(/^shroud-gateway listening on https:\/\/(127\.0\.0\.1:\d+)$/);
    const measured = gateway.waitFor(/^measurement: simulated ([0-9a-f]{96})$/);
    const h3Listening = gateway.waitFor(/^h3 listening on https:\/\/(127\.0\.0\.1:\d+) \(QUIC, UDP\)$/);
    // The log line (stderr) naming the metrics address; the WebSocket scripts read the
    // gateway's subscription gauge there.
    const metrics = gateway.waitFor(/metrics listening metrics=(127\.0\.0\.1:\d+)/, undefined, { stderr: true });
    const [[, gatewayAddr], [, measurement], [, metricsAddr]] = await Promise.all([listening, measured, metrics]);
    const gatewayUrl = `https://${gatewayAddr}/eth`;
    say(`gateway at ${gatewayUrl}, measurement simulated ${measurement}, metrics at http://${metricsAddr}`);

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

    const env = { SHROUD_PROXY_URL: proxyUrl, SHROUD_METRICS_URL: `http://${metricsAddr}` };
    await step("ethers 6 through shroud proxy", () => runScript("ethers.mjs", [], env));
    await step("viem 2 through shroud proxy", () => runScript("viem.mjs", [], env));
    await step("web3.js 4 through shroud proxy: reads, signed transfer, BatchRequest", () =>
      runScript("web3js.mjs", [], env),
    );
    await step("web3.py through shroud proxy: reads, signed transfer, batch_requests", () =>
      runScript("web3py.py", [], env),
    );
    await step("ethers 6 through shroud proxy --http3 (QUIC to the gateway's h3 listener): reads, signed transfer", async () => {
      const [, h3Addr] = await h3Listening;
      const h3Proxy = new Service("shroud proxy --http3", SHROUD_BIN, [
        "proxy",
        "--http3",
        "--listen",
        "127.0.0.1:0",
        "--gateway",
        `https://${h3Addr}/eth`,
        "--pin",
        pin,
        "--allow-simulated",
      ]);
      services.push(h3Proxy);
      const [, h3ProxyUrl] = await h3Proxy.waitFor(/^shroud proxy listening on (http:\/\/127\.0\.0\.1:\d+)\/?$/);
      say(`proxy --http3 at ${h3ProxyUrl} -> https://${h3Addr}/eth over QUIC`);
      const before = ganache.snapshot();
      const detail = await runScript("ethers.mjs", [], { ...env, SHROUD_PROXY_URL: h3ProxyUrl });
      // The calls went through: ganache saw the transfer (and the reads) once more.
      const after = ganache.snapshot();
      if ((after.eth_sendRawTransaction ?? 0) !== (before.eth_sendRawTransaction ?? 0) + 1) {
        throw new Error(`ganache did not see the transfer: before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
      }
      return detail;
    });

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
    await step("wrong pin: the WebSocket upgrade is refused (502, the proxy's error), nothing reaches ganache", async () => {
      const url = await wrongPinProxy();
      return nothingReachesGanache(async () => {
        const { status, body } = await websocketUpgrade(url);
        say(`wrong-pin upgrade: HTTP ${status} ${JSON.stringify(body)}`);
        if (status !== 502) throw new Error(`the upgrade got HTTP ${status}, not 502`);
        if (body?.error?.code !== -32001 || !/pin mismatch/i.test(String(body.error.message))) {
          throw new Error(`the refusal is not the proxy's pin-mismatch error: ${JSON.stringify(body)}`);
        }
        return `HTTP ${status}, error ${body.error.code}`;
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

    // Last: the gateway's chain follower, started by the first subscription, polls ganache until
    // it has been idle for a while, which the call counts of the steps above would see.
    await step("viem 2 webSocket through shroud proxy: watchBlocks, watchContractEvent, unwatch", () =>
      runScript("viem-ws.mjs", [], env),
    );
    await step("ethers 6 WebSocketProvider through shroud proxy: on(block), contract.on, off", () =>
      runScript("ethers-ws.mjs", [], env),
    );

    await step("private transactions: ethers 6 -> proxy -> gateway ([chain.private_tx] relay = ganache), the public upstream never sees the transaction", () =>
      privateTransactions(ganacheUrl, services),
    );
  } catch (error) {
    results.push({ name: "setup", ok: false, detail: error.message });
    say(`FAIL setup: ${error.message}`);
  } finally {
    if (results.some((r) => !r.ok)) for (const service of services) service.printTail();
    await Promise.all(services.map((service) => service.stop()));
  }
}

/**
 * A second gateway whose public upstream is a recording forwarder in front of ganache and whose
 * `[chain.private_tx]` relay is ganache itself; ethers.mjs sends a signed transfer through a
 * proxy in front of it and reads the receipt (through the public upstream). The forwarder must
 * have seen the receipt lookups and never the transaction (neither the call nor its bytes).
 */
async function privateTransactions(ganacheUrl, services) {
  const seen = [];
  const forwarder = http.createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push(body);
      try {
        const answer = await fetch(ganacheUrl, { method: "POST", headers: { "content-type": "application/json" }, body });
        response.writeHead(answer.status, { "content-type": "application/json" });
        response.end(await answer.text());
      } catch (error) {
        response.writeHead(502);
        response.end(String(error));
      }
    });
  });
  await new Promise((resolve) => forwarder.listen(0, "127.0.0.1", resolve));
  const forwarderUrl = `http://127.0.0.1:${forwarder.address().port}/`;
  try {
    const dir = mkdtempSync(path.join(os.tmpdir(), "shroud-private-tx-"));
    const config = path.join(dir, "gateway.toml");
    writeFileSync(
      config,
      [
        "[listen]",
        'https = "127.0.0.1:0"',
        'metrics = "127.0.0.1:0"',
        "[tee]",
        'platform = "simulated"',
        "[[chain]]",
        'name = "eth"',
        `upstreams = ["${forwarderUrl}"]`,
        "[chain.private_tx]",
        `relays = ["${ganacheUrl}"]`,
        'fallback = "none"',
        "",
      ].join("\n"),
    );
    const gateway = new Service("shroud-gateway (private_tx)", GATEWAY_BIN, ["--config", config]);
    services.push(gateway);
    const [[, addr], [, measurement]] = await Promise.all([
      gateway.waitFor(/^shroud-gateway listening on https:\/\/(127\.0\.0\.1:\d+)$/),
      gateway.waitFor(/^measurement: simulated ([0-9a-f]{96})$/),
    ]);
    const proxy = new Service("shroud proxy (private_tx)", SHROUD_BIN, [
      "proxy",
      "--listen",
      "127.0.0.1:0",
      "--gateway",
      `https://${addr}/eth`,
      "--pin",
      `simulated:measurement=${measurement}`,
      "--allow-simulated",
    ]);
    services.push(proxy);
    const [, proxyUrl] = await proxy.waitFor(/^shroud proxy listening on (http:\/\/127\.0\.0\.1:\d+)\/?$/);
    await runScript("ethers.mjs", [], { SHROUD_PROXY_URL: proxyUrl });
    const methods = sortedCounts(
      Object.entries(
        seen
          .flatMap((body) => {
            const parsed = JSON.parse(body);
            return Array.isArray(parsed) ? parsed : [parsed];
          })
          .reduce((counts, call) => ({ ...counts, [call.method]: (counts[call.method] ?? 0) + 1 }), {}),
      ),
    );
    say(`the public upstream (forwarder) saw: ${JSON.stringify(methods)}`);
    if (seen.some((body) => body.includes("eth_sendRawTransaction"))) {
      throw new Error("the public upstream saw eth_sendRawTransaction");
    }
    if (!seen.some((body) => body.includes("eth_getTransactionReceipt"))) {
      throw new Error("the receipt was not read through the public upstream");
    }
    return `transaction mined via the relay; the public upstream saw ${seen.length} requests, none with the transaction`;
  } finally {
    forwarder.close();
  }
}

/**
 * Asks the proxy at `proxyUrl` for a WebSocket on /eth (a bare RFC 6455 upgrade request) and
 * returns the answer's status and JSON body; a 101 is closed at once.
 */
function websocketUpgrade(proxyUrl) {
  return new Promise((resolve, reject) => {
    const request = http.get(new URL("/eth", proxyUrl), {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
      timeout: 15_000,
    });
    request.on("upgrade", (response, socket) => {
      socket.destroy();
      resolve({ status: response.statusCode, body: null });
    });
    request.on("response", (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (text += chunk));
      response.on("end", () => {
        try {
          resolve({ status: response.statusCode, body: JSON.parse(text) });
        } catch {
          reject(new Error(`HTTP ${response.statusCode}, not JSON: ${text.slice(0, 200)}`));
        }
      });
    });
    request.on("timeout", () => request.destroy(new Error("no answer to the upgrade within 15 s")));
    request.on("error", reject);
  });
}

const cancelDeadline = bound(TOTAL_TIMEOUT_MS);
await main();
cancelDeadline();
process.exit(summary());
