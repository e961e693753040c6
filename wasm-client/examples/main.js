// The npm package @shroud-rpc/client in a page without a bundler: ShroudClient verifies the
// gateway, its EIP-1193 provider answers eth_blockNumber. Query parameters fill the form and
// connect at once:
//   index.html?gateway=https://127.0.0.1:8443/eth&measurement=HEX&simulated=1[&fresh=1]
// where `measurement` stands for the policy of a simulated (`--dev`) gateway with that
// measurement; `policy=URL-ENCODED-TOML` gives any other policy.
//
// README.md has the steps (build and unpack the package into ./pkg, start a chain and a gateway,
// serve this folder). The provider is what viem's `custom()`, ethers' `BrowserProvider` and
// web3.js take; with viem, the package's `shroudTransport` does the connecting itself
// (../npm/README.md).
import { ShroudClient } from "@shroud-rpc/client";

const form = document.getElementById("connect");
const status = (text, state) => {
  document.getElementById("status").textContent = text;
  document.body.dataset.state = state;
};

async function showBlockNumber(gateway, policy, options) {
  status("verifying the gateway's attestation…", "connecting");
  // Rejects (code 4900), naming the failed check, unless the bundle verifies against the pin
  // (and, with fresh, carries the nonce this connect sent); nothing is sent to a gateway that
  // does not.
  const shroud = await ShroudClient.connect(gateway, policy, options);
  document.getElementById("verdict").textContent = JSON.stringify(shroud.verdict(), null, 2);
  const provider = shroud.provider();
  const block = BigInt(await provider.request({ method: "eth_blockNumber" }));
  document.getElementById("block").textContent = block.toString();
  status(`block ${block}, read over OHTTP from ${gateway}`, "done");
}

function connect() {
  const data = new FormData(form);
  showBlockNumber(data.get("gateway"), data.get("policy"), {
    allowSimulated: data.get("simulated") === "on",
    fresh: data.get("fresh") === "on",
  }).catch((error) => status(error.message ?? String(error), "error"));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  connect();
});

const query = new URLSearchParams(location.search);
const measurement = query.get("measurement");
form.elements.gateway.value = query.get("gateway") ?? "";
form.elements.policy.value =
  query.get("policy") ??
  (measurement ? `[[accept]]\nplatform = "simulated"\nmeasurement = "${measurement}"\n` : "");
form.elements.simulated.checked = query.has("simulated");
form.elements.fresh.checked = query.has("fresh");
if (form.elements.gateway.value && form.elements.policy.value) connect();
