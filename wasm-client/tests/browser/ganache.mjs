// A dev chain for the tests: ganache on 127.0.0.1, on a port the kernel picks (its CLI refuses
// port 0, its API does not), with a few blocks mined so that a block number read through the
// gateway is not the genesis' 0. Prints `ganache listening on http://127.0.0.1:PORT` once ready;
// stops on SIGTERM/SIGINT. Deterministic wallet: account 0 is
// 0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1 (1000 ETH, key 0x4f3edf98…), chain id 1337.
//
//   --log-calls   also print `rpc METHOD` for every JSON-RPC call ganache handles from then on,
//                 so that a test can tell whether a call reached the node (the same lines as
//                 client-sdk/tests/wallets/ganache-node.mjs prints)
import ganache from "ganache";

const args = process.argv.slice(2);
for (const arg of args) {
  if (arg !== "--log-calls") {
    console.error(`ganache.mjs: unknown argument ${arg}`);
    process.exit(64);
  }
}
const logCalls = args.includes("--log-calls");
let listening = false;

// Ganache's logger receives one line per JSON-RPC call holding just the method name (plus
// multi-line transaction summaries, which are not method names and are dropped).
const METHOD = /^[a-z0-9]+_[A-Za-z0-9]+$/;
const logger = {
  log(...parts) {
    const line = parts.join(" ");
    if (logCalls && listening && METHOD.test(line)) process.stdout.write(`rpc ${line}\n`);
  },
};

const blocks = Number(process.env.GANACHE_BLOCKS ?? "7");
const server = ganache.server({
  chain: { chainId: 1337 },
  wallet: { deterministic: true },
  logging: { quiet: !logCalls, logger },
});
await server.listen(0, "127.0.0.1");
const { port } = server.address();
await server.provider.request({ method: "evm_mine", params: [{ blocks }] });
listening = true;
console.log(`ganache listening on http://127.0.0.1:${port}`);

const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
