// A dev chain for the tests: ganache on 127.0.0.1, on a port the kernel picks (its CLI refuses
// port 0, its API does not), with a few blocks mined so that a block number read through the
// gateway is not the genesis' 0. Prints `ganache listening on http://127.0.0.1:PORT` once ready;
// stops on SIGTERM/SIGINT.
import ganache from "ganache";

const blocks = Number(process.env.GANACHE_BLOCKS ?? "7");
const server = ganache.server({
  chain: { chainId: 1337 },
  wallet: { deterministic: true },
  logging: { quiet: true },
});
await server.listen(0, "127.0.0.1");
const { port } = server.address();
await server.provider.request({ method: "evm_mine", params: [{ blocks }] });
console.log(`ganache listening on http://127.0.0.1:${port}`);

const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
