// Preload (`node --require ./resolve-test-host.cjs`) for acme.mjs: makes the names in env
// SHROUD_RESOLVE ("NAME=IP,NAME=IP") resolve to those addresses, and changes nothing else. Both of
// Node's HTTP stacks ask dns.lookup: node:http/https (ethers' JsonRpcProvider) through
// net.connect, and fetch (undici, viem's http transport) through its own net/tls connect, which
// reads `dns.lookup` when it connects; so patching that one function covers both. Prints one line
// on stderr the first time each name is answered, so a harness can see the override was used.

"use strict";

const dns = require("node:dns");
const net = require("node:net");

const overrides = new Map();
for (const entry of (process.env.SHROUD_RESOLVE || "").split(",").filter(Boolean)) {
  const [name, address] = entry.split("=");
  if (!name || !net.isIP(address || "")) throw new Error(`SHROUD_RESOLVE: bad entry ${entry}`);
  overrides.set(name.toLowerCase(), address);
}
const announced = new Set();

const original = dns.lookup;
dns.lookup = function lookup(hostname, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  } else if (typeof options === "number") {
    options = { family: options };
  }
  const address = typeof hostname === "string" ? overrides.get(hostname.toLowerCase()) : undefined;
  if (address === undefined) return original.call(dns, hostname, options, callback);
  if (!announced.has(hostname)) {
    announced.add(hostname);
    process.stderr.write(`resolve-test-host: ${hostname} -> ${address}\n`);
  }
  const family = net.isIP(address);
  process.nextTick(() => {
    if (options && options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  });
  return {};
};
