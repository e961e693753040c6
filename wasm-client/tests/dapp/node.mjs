// The same package under Node (>= 20), as a script or a server would use it: the "node" export
// condition, where the .wasm is read from disk. Prints one line per check; exits non-zero on a
// failure.
//
//   NODE_TLS_REJECT_UNAUTHORIZED=0 node node.mjs https://127.0.0.1:PORT/eth MEASUREMENT_HEX
//
// (The dev gateway's certificate is self-signed; the calls are OHTTP, sealed to keys verified
// against the pin, whatever TLS carries them.)
import { ShroudClient } from "@shroud-rpc/client";
import { shroudTransport } from "@shroud-rpc/client/viem";
import { createPublicClient } from "viem";

const [url, measurement] = process.argv.slice(2);
const policy = `[[accept]]\nplatform = "simulated"\nmeasurement = "${measurement}"\n`;
const check = (ok, line) => {
  if (!ok) throw new Error(`FAIL: ${line}`);
  console.log(`node ${process.versions.node}: ${line}`);
};

const client = await ShroudClient.connect(url, policy, { allowSimulated: true });
const block = await client.request({ method: "eth_blockNumber" });
check(/^0x[0-9a-f]+$/.test(block), `ShroudClient.request eth_blockNumber -> ${block}`);
const viem = createPublicClient({ transport: shroudTransport({ url, policy, allowSimulated: true }) });
const chainId = await viem.getChainId();
check(chainId === 1337, `viem getChainId through shroudTransport -> ${chainId}`);
const wrong = policy.replace(/measurement = "(..)/, (_, first) => `measurement = "${first === "00" ? "ff" : "00"}`);
const refused = await ShroudClient.connect(url, wrong, { allowSimulated: true }).then(
  () => null,
  (error) => error,
);
check(refused?.code === 4900, `a wrong pin is refused with code ${refused?.code}: ${refused?.message?.slice(0, 60)}…`);
