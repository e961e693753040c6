// What run.mjs (the example page) and dapp.mjs (the throwaway dapp) share: a static file server
// on 127.0.0.1, headless Chromium, and JSON-RPC straight to the node.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";

import { chromium } from "playwright-core";

export const TIMEOUT_MS = 60_000;

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  // `WebAssembly.instantiateStreaming` insists on this type.
  ".wasm": "application/wasm",
};

/**
 * Serves the files of `root` (html, js, json, wasm only) on 127.0.0.1 at a port the kernel picks;
 * resolves to `{ origin, close }`.
 */
export async function serveStatic(root) {
  const server = createServer(async (request, response) => {
    const path = new URL(request.url, "http://127.0.0.1").pathname;
    const file = normalize(join(root, path === "/" ? "index.html" : decodeURIComponent(path)));
    const type = TYPES[extname(file)];
    if (!file.startsWith(root + sep) || !type) {
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
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Headless Chromium (Debian's, through playwright-core) with a throwaway profile; resolves to
 * `{ page, close }`. The page's console and errors are printed with `prefix`.
 */
export async function launchChromium(executablePath, prefix = "page") {
  const userDataDir = await mkdtemp(join(tmpdir(), "shroud-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      // The dev gateway's certificate is self-signed RA-TLS, which no browser trusts. Accepting
      // it costs nothing here: the calls are sealed with OHTTP to keys the page verified in wasm
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
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on("console", (message) => console.log(`${prefix} console.${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => console.log(`${prefix} error: ${error.message}`));
  return {
    page,
    close: async () => {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/** One JSON-RPC call straight to the node at `url` (not through the gateway): its result. */
export async function nodeCall(url, method, params = []) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const answer = await response.json();
  if (answer.error) throw new Error(`${method} at the node: ${answer.error.message}`);
  return answer.result;
}

/** The simulated-TEE policy pinning `measurement`. */
export const simulatedPolicy = (measurement) =>
  `[[accept]]\nplatform = "simulated"\nmeasurement = "${measurement}"\n`;

/** Another measurement: `measurement` with its first byte changed. */
export const otherMeasurement = (measurement) =>
  (measurement.startsWith("00") ? "ff" : "00") + measurement.slice(2);
