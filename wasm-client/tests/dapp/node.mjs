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
// One module per platform, read from disk: a policy pinning TDX (and the dev gateway's simulated
// measurement) loads the TDX module. The package reads the policy as TOML (smol-toml), so a rule
// whose `platform` key is quoted and escaped still counts: TDX and Nitro pinned, the all-platform
// module, which verifies both.
const rule = (platform, key, fields) =>
  `[[accept]]\n${key} = "${platform}"\n${fields.map((f) => `${f} = "${"ab".repeat(48)}"\n`).join("")}`;
const tdx = rule("tdx", "platform", ["mrtd", "rtmr0", "rtmr1", "rtmr2"]);
const hiddenNitro = rule("nitro", '"plat\\u0066orm"', ["pcr0", "pcr1", "pcr2"]);
const single = await ShroudClient.connect(url, `${tdx}${policy}`, { allowSimulated: true });
const both = await ShroudClient.connect(url, `${tdx}${hiddenNitro}${policy}`, { allowSimulated: true });
const float = await ShroudClient.connect(url, `${policy}max_evidence_age_secs = 1.5\n`, { allowSimulated: true }).then(
  () => null,
  (error) => error,
);
check(
  single.verdict().platform === "simulated" &&
    both.verdict().platform === "simulated" &&
    float?.code === 4900 &&
    /max_evidence_age_secs: a policy has no floats/.test(float?.message),
  "a TDX policy connects through the TDX module, one with an escaped Nitro rule through the all-platform one; a float in a policy is refused, naming its key",
);

