// End-to-end harness for the public endpoint (issue 14, DESIGN §4.4): a gateway with [acme] gets a
// publicly trusted certificate from a real ACME CA (Debian's pebble) through TLS-ALPN-01 answered
// on its own https listener, and wallets that know only a URL use it directly. All on 127.0.0.1,
// with ports the OS picks:
//
//   1. a throwaway CA and a P-256 certificate for pebble's own HTTPS (openssl, in a temp dir);
//   2. pebble-challtestsrv as pebble's DNS (every A query answers 127.0.0.1, no AAAA), pebble
//      (60-second certificates, tlsPort = the gateway's https port, and no validation shortcut:
//      PEBBLE_VA_ALWAYS_VALID must not be set), ganache;
//   3. shroud-gateway --config with [acme] hosts = ["rpc.shroud.test"]; waits for "ACME
//      certificate installed" and fetches pebble's root from its management interface;
//   4. curl --cacert ROOT --resolve, ethers 6 and viem 2 (NODE_EXTRA_CA_CERTS=ROOT, and
//      resolve-test-host.cjs making rpc.shroud.test resolve to 127.0.0.1) against
//      https://rpc.shroud.test:PORT/eth, no proxy: a signed transfer and its receipt each;
//   5. both certificates over one port: a ClientHello without ALPN shroud-ra-tls/1 gets the
//      chain pebble issued, one with it the RA-TLS certificate; the two have one public key;
//   6. ?nonce= on the attestation route: 400 problem+json for a bad nonce, 200 with a certificate
//      for the same key for a good one, 429 with Retry-After over the burst;
//   7. shroud call/audit/attest --fresh on the same URL, when this build of the CLI has them
//      (else "skipped: ...", a failure with CI=true);
//   8. renewal: after two thirds of the lifetime a new certificate (another serial, the same key,
//      a later notAfter) while requests keep being answered, and renewals_total{outcome="ok"} >= 2.
//
// Every child is killed at the end, on failure and on timeout. Exits 0 only when every step
// passed. Without pebble it prints "skipped: ..." and exits 0, unless SHROUD_REQUIRE_PEBBLE=1.
//
//     npm ci --prefix client-sdk/tests/wallets
//     cargo build -p shroud-gateway -p shroud-client
//     node client-sdk/tests/wallets/acme.mjs
//
// Env: SHROUD_GATEWAY_BIN, SHROUD_BIN, SHROUD_PEBBLE_BIN, SHROUD_CHALLTESTSRV_BIN,
// SHROUD_REQUIRE_PEBBLE, CI, SHROUD_ACME_TIMEOUT_SECS (default 240).

import { spawnSync } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";

import {
  GATEWAY_BIN,
  HERE,
  SHROUD_BIN,
  Ganache,
  Service,
  bound,
  results,
  runScript,
  say,
  setName,
  skip,
  step,
  summary,
  version,
} from "./harness.mjs";

setName("acme");

const TOTAL_TIMEOUT_MS = 1000 * Number(process.env.SHROUD_ACME_TIMEOUT_SECS || 240);
const HOST = "rpc.shroud.test";
/** pebble's certificateValidityPeriod: renewal comes at two thirds, 40 s after issuance. */
const VALIDITY_SECS = 60;
/** The ALPN id every attesting client offers (DESIGN §4.1). */
const RA_TLS_ALPN = "shroud-ra-tls/1";
/** DER of the RA-TLS evidence extension's OID, 2.23.133.5.4.9. */
const EVIDENCE_OID_DER = Buffer.from([0x06, 0x06, 0x67, 0x81, 0x05, 0x05, 0x04, 0x09]);
const REQUIRE_PEBBLE = process.env.SHROUD_REQUIRE_PEBBLE === "1";
const IN_CI = process.env.CI === "true";

/** A program on PATH (or an absolute path), or null. */
function which(program) {
  if (path.isAbsolute(program)) return existsSync(program) ? program : null;
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    const candidate = path.join(dir, program);
    if (dir && existsSync(candidate)) return candidate;
  }
  return null;
}

const PEBBLE = which(process.env.SHROUD_PEBBLE_BIN || "pebble");
const CHALLTESTSRV = which(process.env.SHROUD_CHALLTESTSRV_BIN || "pebble-challtestsrv");

/** A port free on 127.0.0.1 now (there is a small window before the user binds it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Waits until something accepts TCP connections on 127.0.0.1:port. */
async function waitForPort(port, service, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (service.exited) throw new Error(`${service.name} exited`);
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => resolve(socket.end() && true));
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${service.name}: nothing listening on 127.0.0.1:${port} within ${ms / 1000} s`);
}

function run(command, args, { timeout = 30_000 } = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", timeout });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  return result;
}

function runOk(command, args, options) {
  const result = run(command, args, options);
  if (result.status !== 0) {
    throw new Error(`${path.basename(command)} ${args.join(" ")} exited ${result.status}: ${result.stderr.trim()}`);
  }
  return result;
}

/** A CA and a P-256 certificate for 127.0.0.1 signed by it: pebble's own HTTPS. */
function makePebbleTls(dir) {
  const file = (name) => path.join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  runOk("openssl", ["req", "-x509", ...ec, "-keyout", file("ca.key"), "-out", file("ca.pem"), "-days", "1", "-subj", "/CN=shroud test pebble server CA"]);
  runOk("openssl", ["req", ...ec, "-keyout", file("server.key"), "-out", file("server.csr"), "-subj", "/CN=127.0.0.1"]);
  writeFileSync(file("server.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n");
  runOk("openssl", ["x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial", "-out", file("server.pem"), "-days", "1", "-extfile", file("server.ext")]);
  return { ca: file("ca.pem"), cert: file("server.pem"), key: file("server.key") };
}

/** One HTTPS request; `options` go to https.request (ca, servername, lookup...). */
function httpsRequest(url, options = {}, body = undefined) {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { timeout: 15_000, ...options }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () =>
        resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") }),
      );
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`${url}: no answer within 15 s`)));
    request.on("error", reject);
    request.end(body);
  });
}

/** Connects the way a wallet does: HOST resolved to 127.0.0.1, the root from pebble trusted. */
function publicOptions(root) {
  return {
    ca: root,
    servername: HOST,
    lookup: (hostname, options, callback) =>
      options.all ? callback(null, [{ address: "127.0.0.1", family: 4 }]) : callback(null, "127.0.0.1", 4),
  };
}

/** The certificate (and chain) served to a ClientHello offering `alpn`. */
function peerCertificate(port, alpn, { root = undefined, verify = false } = {}) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: HOST,
      ALPNProtocols: alpn,
      ca: root,
      rejectUnauthorized: verify,
      timeout: 10_000,
    });
    socket.once("secureConnect", () => {
      const leaf = socket.getPeerCertificate(true);
      const chain = [];
      for (let c = leaf; c && c.raw && !chain.some((d) => d.fingerprint256 === c.fingerprint256); c = c.issuerCertificate) {
        chain.push(c);
      }
      resolve({
        x509: new X509Certificate(leaf.raw),
        chain: chain.map((c) => new X509Certificate(c.raw)),
        authorized: socket.authorized,
        alpn: socket.alpnProtocol,
      });
      socket.end();
    });
    socket.once("timeout", () => socket.destroy(new Error("TLS handshake timed out")));
    socket.once("error", reject);
  });
}

/** `line` without ANSI colour codes. */
function plain(line) {
  return line.replace(/\x1b\[[0-9;]*m/g, "");
}

function spki(x509) {
  return x509.publicKey.export({ type: "spki", format: "der" });
}

function describeCert(x509) {
  return `subject ${x509.subject.replace(/\n/g, ", ")}; SAN ${x509.subjectAltName}; issuer ${x509.issuer.replace(/\n/g, ", ")}; serial ${x509.serialNumber}; not after ${x509.validTo}`;
}

/** The value of a metric line (labels exactly as given) at the metrics endpoint. */
async function metric(metricsPort, name) {
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? null : Number(line.slice(name.length + 1));
}

/** The sum of every sample of `name` whose labels contain `labels` (e.g. `outcome="x"`). */
async function metricSum(metricsPort, name, labels) {
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/** `shroud SUBCOMMAND --help` mentions every flag in `flags`. */
function cliHas(subcommand, flags) {
  if (!existsSync(SHROUD_BIN)) return false;
  const help = run(SHROUD_BIN, [subcommand, "--help"], { timeout: 10_000 });
  return help.status === 0 && flags.every((flag) => help.stdout.includes(flag));
}

/** Runs a CLI step when this build has the command, else skips it (a failure with CI=true). */
async function cliStep(name, subcommand, flags, body) {
  if (cliHas(subcommand, flags)) return step(name, body);
  const why = `${SHROUD_BIN} has no \`${subcommand}\` with ${flags.join(" ")}`;
  if (IN_CI) return step(name, () => Promise.reject(new Error(`${why} (CI=true: required)`)));
  return skip(name, why);
}

function preflight() {
  const missing = [];
  for (const pkg of ["ganache", "ethers", "viem"]) {
    if (!existsSync(path.join(HERE, "node_modules", pkg))) missing.push(`node_modules/${pkg} (npm ci --prefix client-sdk/tests/wallets)`);
  }
  for (const program of ["openssl", "curl"]) if (!which(program)) missing.push(program);
  if (!existsSync(GATEWAY_BIN)) missing.push(`${GATEWAY_BIN} (cargo build -p shroud-gateway, or set SHROUD_GATEWAY_BIN)`);
  return missing;
}

async function main() {
  if (!PEBBLE || !CHALLTESTSRV) {
    const why = `pebble and pebble-challtestsrv not found (apt-get install pebble, or set SHROUD_PEBBLE_BIN / SHROUD_CHALLTESTSRV_BIN)`;
    if (!REQUIRE_PEBBLE) {
      say(`skipped: ${why}`);
      process.exit(0);
    }
    results.push({ name: "prerequisites", ok: false, detail: `${why}; SHROUD_REQUIRE_PEBBLE=1` });
    return;
  }
  if (process.env.PEBBLE_VA_ALWAYS_VALID !== undefined) {
    results.push({ name: "prerequisites", ok: false, detail: "PEBBLE_VA_ALWAYS_VALID is set: the validation must really happen" });
    return;
  }
  const missing = preflight();
  if (missing.length > 0) {
    for (const what of missing) say(`missing: ${what}`);
    results.push({ name: "prerequisites", ok: false, detail: `missing ${missing.length}` });
    return;
  }
  say(`node ${process.version}, ethers ${version("ethers")}, viem ${version("viem")}, ganache ${version("ganache")}`);
  say(`pebble ${PEBBLE}, challtestsrv ${CHALLTESTSRV}`);
  say(`gateway ${GATEWAY_BIN}`);
  say(`shroud  ${SHROUD_BIN}`);

  const dir = mkdtempSync(path.join(os.tmpdir(), "shroud-acme-"));
  const services = [];
  try {
    const [dnsPort, challManagement, pebblePort, pebbleManagement, httpPort, gatewayPort, metricsPort] = await Promise.all(
      Array.from({ length: 7 }, freePort),
    );
    const pebbleTls = makePebbleTls(dir);

    const challtestsrv = new Service("pebble-challtestsrv", CHALLTESTSRV, [
      "-dns01", `127.0.0.1:${dnsPort}`,
      "-http01", "",
      "-https01", "",
      "-tlsalpn01", "",
      "-management", `127.0.0.1:${challManagement}`,
      "-defaultIPv4", "127.0.0.1",
      "-defaultIPv6", "",
    ]);
    services.push(challtestsrv);
    await waitForPort(challManagement, challtestsrv);

    const pebbleConfig = path.join(dir, "pebble.json");
    writeFileSync(
      pebbleConfig,
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${pebblePort}`,
          managementListenAddress: `127.0.0.1:${pebbleManagement}`,
          certificate: pebbleTls.cert,
          privateKey: pebbleTls.key,
          httpPort,
          tlsPort: gatewayPort,
          ocspResponderURL: "",
          externalAccountBindingRequired: false,
          certificateValidityPeriod: VALIDITY_SECS,
        },
      }),
    );
    // PEBBLE_AUTHZREUSE=0: every order, the renewal's too, is validated afresh through TLS-ALPN-01
    // (pebble reuses a valid authorization half the time by default).
    const pebbleEnv = { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" };
    const pebble = new Service("pebble", PEBBLE, ["-config", pebbleConfig, "-dnsserver", `127.0.0.1:${dnsPort}`], { env: pebbleEnv });
    services.push(pebble);
    await waitForPort(pebblePort, pebble);
    await waitForPort(pebbleManagement, pebble);
    say(`pebble at https://127.0.0.1:${pebblePort}/dir (tlsPort ${gatewayPort}), DNS at 127.0.0.1:${dnsPort}`);

    const ganache = new Ganache();
    services.push(ganache);
    const [, ganacheUrl] = await ganache.waitFor(/^ganache listening on (http:\/\/127\.0\.0\.1:\d+)$/);
    say(`ganache at ${ganacheUrl}`);

    const gatewayConfig = path.join(dir, "gateway.toml");
    writeFileSync(
      gatewayConfig,
      [
        "[listen]",
        `https = "127.0.0.1:${gatewayPort}"`,
        `metrics = "127.0.0.1:${metricsPort}"`,
        "[tee]",
        'platform = "simulated"',
        "[limits]",
        "fresh_evidence_per_minute = 60",
        "fresh_evidence_burst = 3",
        "[acme]",
        `directory = "https://127.0.0.1:${pebblePort}/dir"`,
        'contact = "mailto:ops@shroud.test"',
        `hosts = ["${HOST}"]`,
        `ca = "${pebbleTls.ca}"`,
        "[[chain]]",
        'name = "eth"',
        "chain_id = 1337",
        `upstreams = ["${ganacheUrl}"]`,
        "",
      ].join("\n"),
    );
    const gatewayStarted = performance.now();
    const gateway = new Service("shroud-gateway", GATEWAY_BIN, ["--config", gatewayConfig], {
      env: { ...process.env, NO_COLOR: "1" },
    });
    services.push(gateway);
    const installed = gateway.waitFor(/ACME certificate installed/, 60_000, { stderr: true });
    installed.catch(() => {});
    const listening = gateway.waitFor(/^shroud-gateway listening on https:\/\/(127\.0\.0\.1:\d+)$/);
    const measured = gateway.waitFor(/^measurement: simulated ([0-9a-f]{96})$/);
    const [[, gatewayAddr], [, measurement]] = await Promise.all([listening, measured]);
    const url = `https://${HOST}:${gatewayPort}/eth`;
    const pin = `simulated:measurement=${measurement}`;
    say(`gateway listening on https://${gatewayAddr}, public URL ${url}, pin ${pin}`);

    let root = null;
    let firstPublic = null;
    let raTls = null;
    const rootFile = path.join(dir, "pebble-root.pem");

    await step("the gateway obtains a certificate from pebble through TLS-ALPN-01", async () => {
      const line = plain((await installed).input);
      const took = ((performance.now() - gatewayStarted) / 1000).toFixed(1);
      const validations = pebble.tail.map((l) => /Starting (\d+) validations/.exec(l)).find(Boolean);
      say(`gateway: ${line.trim()}`);
      const response = await httpsRequest(`https://127.0.0.1:${pebbleManagement}/roots/0`, { ca: readFileSync(pebbleTls.ca) });
      if (response.status !== 200 || !response.body.includes("BEGIN CERTIFICATE")) {
        throw new Error(`pebble /roots/0: HTTP ${response.status}: ${response.body.slice(0, 200)}`);
      }
      root = response.body;
      writeFileSync(rootFile, root);
      say(`pebble root: ${new X509Certificate(root).subject.replace(/\n/g, ", ")} -> ${rootFile}`);
      const answered = await metricSum(metricsPort, "shroud_tls_handshakes_total", 'outcome="acme_validation"');
      say(`shroud_tls_handshakes_total{outcome="acme_validation"}: ${answered}`);
      if (!(answered >= 1)) throw new Error("the gateway counted no acme-tls/1 handshake: who answered the challenge?");
      return `installed ${took} s after start; pebble ran ${validations ? validations[1] : "?"} validations, the gateway answered ${answered}`;
    });
    if (root === null) return;

    await step("curl --cacert <pebble root> https://rpc.shroud.test:PORT/eth eth_chainId", async () => {
      const result = run("curl", [
        "-sS", "--fail-with-body", "--max-time", "15",
        "--cacert", rootFile,
        "--resolve", `${HOST}:${gatewayPort}:127.0.0.1`,
        "-H", "content-type: application/json",
        "--data", '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
        url,
      ]);
      say(`curl: exit ${result.status}, ${result.stdout.trim()}${result.stderr.trim() ? `, stderr ${result.stderr.trim()}` : ""}`);
      if (result.status !== 0) throw new Error(`curl exited ${result.status}: ${result.stderr.trim()}`);
      const answer = JSON.parse(result.stdout);
      if (answer.result !== "0x539") throw new Error(`expected 0x539, got ${result.stdout.trim()}`);
      return answer.result;
    });

    const walletEnv = { NODE_EXTRA_CA_CERTS: rootFile, SHROUD_RESOLVE: `${HOST}=127.0.0.1` };
    const preload = { node: ["--require", path.join(HERE, "resolve-test-host.cjs")] };
    await step("ethers 6 on the public URL, no proxy: signed transfer and receipt", () =>
      runScript("ethers.mjs", [url], walletEnv, preload),
    );
    await step("viem 2 on the public URL, no proxy: signed transfer and receipt", () =>
      runScript("viem.mjs", [url], walletEnv, preload),
    );

    await step("one port, two certificates, one key: public chain without shroud-ra-tls/1, RA-TLS with it", async () => {
      const pub = await peerCertificate(gatewayPort, ["http/1.1"], { root, verify: true });
      raTls = await peerCertificate(gatewayPort, ["http/1.1", RA_TLS_ALPN]);
      firstPublic = pub.x509;
      say(`public:  ${describeCert(pub.x509)} (chain of ${pub.chain.length}, authorized by pebble's root: ${pub.authorized}, ALPN ${pub.alpn})`);
      say(`RA-TLS:  ${describeCert(raTls.x509)} (ALPN ${raTls.alpn})`);
      if (!pub.authorized) throw new Error("the public chain does not verify to pebble's root");
      if (!pub.x509.checkHost(HOST)) throw new Error(`the public certificate is not for ${HOST}`);
      if (pub.x509.raw.includes(EVIDENCE_OID_DER)) throw new Error("the public certificate carries RA-TLS evidence");
      if (!raTls.x509.raw.includes(EVIDENCE_OID_DER)) throw new Error("the RA-TLS certificate has no evidence extension");
      if (raTls.alpn === RA_TLS_ALPN) throw new Error("the server selected shroud-ra-tls/1 (it must never)");
      if (!raTls.x509.checkHost(HOST)) throw new Error(`the RA-TLS certificate's SANs lack ${HOST}`);
      if (!spki(pub.x509).equals(spki(raTls.x509))) throw new Error("the public and RA-TLS certificates carry different keys");
      return `same SPKI (${spki(pub.x509).length} bytes); public issuer ${pub.x509.issuer.replace(/\n/g, ", ")}`;
    });

    const attestation = (query) =>
      httpsRequest(`https://${HOST}:${gatewayPort}/.well-known/shroud/attestation${query}`, publicOptions(root));

    await step("?nonce=zz and a 4-byte nonce: 400 application/problem+json", async () => {
      const answers = [];
      for (const nonce of ["zz", "00112233"]) {
        const response = await attestation(`?nonce=${nonce}`);
        say(`nonce ${nonce}: HTTP ${response.status} ${response.headers["content-type"]} ${response.body.slice(0, 200)}`);
        if (response.status !== 400) throw new Error(`nonce ${nonce}: HTTP ${response.status}, expected 400`);
        if (!String(response.headers["content-type"]).startsWith("application/problem+json")) {
          throw new Error(`nonce ${nonce}: content-type ${response.headers["content-type"]}`);
        }
        const title = JSON.parse(response.body).title;
        if (!/^invalid nonce/.test(title)) throw new Error(`nonce ${nonce}: title ${JSON.stringify(title)}`);
        answers.push(title);
      }
      return answers.join("; ");
    });

    await step("a 32-byte nonce: 200, a freshly issued certificate for the serving key", async () => {
      const nonce = randomBytes(32);
      const response = await attestation(`?nonce=${nonce.toString("hex")}`);
      if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${response.body.slice(0, 300)}`);
      const bundle = JSON.parse(response.body);
      if (typeof bundle.certificate !== "string") throw new Error(`no certificate in ${response.body.slice(0, 300)}`);
      const fresh = new X509Certificate(Buffer.from(bundle.certificate, "base64"));
      say(`fresh:   ${describeCert(fresh)}`);
      if (!spki(fresh).equals(spki(raTls.x509))) throw new Error("the fresh certificate's key is not the serving key");
      if (fresh.raw.equals(raTls.x509.raw)) throw new Error("the fresh certificate is the serving one, not a new one");
      // The simulated claims are CBOR in the evidence extension: the nonce's 32 bytes appear as they are.
      const carried = fresh.raw.includes(nonce) || fresh.raw.includes(Buffer.from(nonce.toString("hex")));
      if (!carried) throw new Error("the nonce does not appear in the fresh certificate");
      return "same SPKI as the serving certificate, nonce carried";
    });

    await step("fresh evidence over the burst (3): 429 problem+json with Retry-After", async () => {
      const statuses = [];
      for (let i = 0; i < 6; i++) {
        const response = await attestation(`?nonce=${randomBytes(16).toString("hex")}`);
        statuses.push(response.status);
        if (response.status === 429) {
          say(`429 after ${i + 1} requests: retry-after ${response.headers["retry-after"]}, ${response.headers["content-type"]}, ${response.body.slice(0, 200)}`);
          if (!String(response.headers["content-type"]).startsWith("application/problem+json")) throw new Error(`content-type ${response.headers["content-type"]}`);
          if (!/^\d+$/.test(String(response.headers["retry-after"]))) throw new Error(`retry-after ${response.headers["retry-after"]}`);
          // Let the bucket refill (one a second) for the CLI's --fresh below.
          await new Promise((resolve) => setTimeout(resolve, 1000 * (Number(response.headers["retry-after"]) + 2)));
          return `statuses ${statuses.join(", ")}`;
        }
      }
      throw new Error(`no 429 in ${statuses.join(", ")}`);
    });

    const resolve = `${HOST}:${gatewayPort}:127.0.0.1`;
    const shroud = (args) => {
      const result = run(SHROUD_BIN, args, { timeout: 60_000 });
      say(`shroud ${args[0]}: exit ${result.status}`);
      for (const line of `${result.stdout}${result.stderr}`.trim().split("\n")) say(`  ${line}`);
      return result;
    };
    await cliStep("shroud call on the same URL with pins: 0x539", "call", ["--resolve"], async () => {
      const result = shroud(["call", url, "eth_chainId", "--pin", pin, "--allow-simulated", "--resolve", resolve]);
      if (result.status !== 0) throw new Error(`exit ${result.status}`);
      if (!result.stdout.includes("0x539")) throw new Error(`printed ${result.stdout.trim()}`);
      return "0x539";
    });
    await cliStep("shroud audit: same key, attestation verifies", "audit", ["--ca", "--resolve"], async () => {
      const result = shroud(["audit", url, "--pin", pin, "--allow-simulated", "--ca", rootFile, "--resolve", resolve]);
      if (result.status !== 0) throw new Error(`exit ${result.status}`);
      return "exit 0";
    });
    await cliStep("shroud attest --fresh", "attest", ["--fresh", "--resolve"], async () => {
      const result = shroud(["attest", url, "--fresh", "--pin", pin, "--allow-simulated", "--resolve", resolve]);
      if (result.status !== 0) throw new Error(`exit ${result.status}`);
      return "exit 0";
    });

    await step("renewal at two thirds of the lifetime: new serial, same key, later notAfter, no failed request", async () => {
      const renewed = gateway.waitFor(/ACME certificate installed/, 1000 * VALIDITY_SECS, { stderr: true });
      let ok = 0;
      const failures = [];
      let done = false;
      renewed.finally(() => (done = true)).catch(() => {});
      while (!done) {
        try {
          const response = await httpsRequest(url, { method: "POST", headers: { "content-type": "application/json" }, ...publicOptions(root) },
            JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }));
          if (JSON.parse(response.body).result === "0x539") ok += 1;
          else failures.push(`HTTP ${response.status} ${response.body.slice(0, 100)}`);
        } catch (error) {
          failures.push(error.message);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      const line = plain((await renewed).input);
      say(`gateway: ${line.trim()}`);
      // One more request on a new connection, then the new certificate.
      const after = await peerCertificate(gatewayPort, ["http/1.1"], { root, verify: true });
      say(`renewed: ${describeCert(after.x509)} (authorized: ${after.authorized})`);
      if (!after.authorized) throw new Error("the renewed chain does not verify to pebble's root");
      if (after.x509.serialNumber === firstPublic.serialNumber) throw new Error("the same certificate is still served");
      if (!spki(after.x509).equals(spki(firstPublic))) throw new Error("the renewed certificate has another key");
      if (!(new Date(after.x509.validTo) > new Date(firstPublic.validTo))) throw new Error("the renewed notAfter is not later");
      const renewals = await metric(metricsPort, 'shroud_acme_renewals_total{outcome="ok"}');
      const expiry = await metric(metricsPort, "shroud_acme_certificate_expiry_timestamp_seconds");
      say(`metrics: renewals ok ${renewals}, expiry ${expiry} (${new Date(expiry * 1000).toISOString()})`);
      if (!(renewals >= 2)) throw new Error(`shroud_acme_renewals_total{outcome="ok"} is ${renewals}`);
      if (Math.abs(expiry * 1000 - new Date(after.x509.validTo).getTime()) > 1000) throw new Error(`expiry gauge ${expiry} is not the notAfter ${after.x509.validTo}`);
      if (failures.length > 0) throw new Error(`${failures.length} of ${ok + failures.length} requests failed during the renewal: ${failures[0]}`);
      return `${ok} requests answered 0x539 meanwhile, none failed; renewals ok ${renewals}`;
    });
  } catch (error) {
    results.push({ name: "setup", ok: false, detail: error.message });
    say(`FAIL setup: ${error.message}`);
  } finally {
    if (results.some((r) => !r.ok)) for (const service of services) service.printTail();
    await Promise.all(services.map((service) => service.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

const cancelDeadline = bound(TOTAL_TIMEOUT_MS);
await main();
cancelDeadline();
process.exit(summary());
