// A ganache dev chain on loopback for the end-to-end tests (run.mjs and client-sdk/tests/dev_node.rs).
//
// Deterministic wallet (account 0 is 0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1, 1000 ETH),
// chain id 1337, instant mining. It listens on 127.0.0.1 on a port the OS picks (ganache's CLI
// refuses port 0, its library does not) and prints one line
//
//     ganache listening on http://127.0.0.1:PORT
//
// Options:
//   --log-calls        print `rpc METHOD` on stdout for every JSON-RPC call ganache handles, so a
//                      harness can tell whether a call reached the node (ganache is otherwise quiet)
//   --exit-with-stdin  exit when stdin closes, so the node dies with the process that started it
//                      even when that process is killed without cleaning up

import ganache from "ganache";

const args = new Set(process.argv.slice(2));
for (const arg of args) {
  if (arg !== "--log-calls" && arg !== "--exit-with-stdin") {
    console.error(`ganache-node: unknown argument ${arg}`);
    process.exit(64);
  }
}
const logCalls = args.has("--log-calls");

// Ganache's logger receives one line per JSON-RPC call holding just the method name (plus
// multi-line transaction summaries, which are not method names and are dropped).
const METHOD = /^[a-z0-9]+_[A-Za-z0-9]+$/;
const logger = {
  log(...parts) {
    const line = parts.join(" ");
    if (logCalls && METHOD.test(line)) {
      process.stdout.write(`rpc ${line}\n`);
    }
  },
};

const server = ganache.server({
  wallet: { deterministic: true },
  chain: { chainId: 1337 },
  logging: { quiet: !logCalls, logger },
});

let closing = false;
async function shutdown(code) {
  if (closing) return;
  closing = true;
  try {
    await server.close();
  } catch {
    // Already closed or never opened: exiting is all that is left.
  }
  process.exit(code);
}

process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
if (args.has("--exit-with-stdin")) {
  process.stdin.on("end", () => shutdown(0));
  process.stdin.on("error", () => shutdown(0));
  process.stdin.resume();
}

try {
  await server.listen(0, "127.0.0.1");
} catch (error) {
  console.error(`ganache-node: cannot listen: ${error.message}`);
  process.exit(1);
}
const { address, port } = server.address();
process.stdout.write(`ganache listening on http://${address}:${port}\n`);
