// The wasm client under viem: ShroudClient verifies the gateway, its EIP-1193 provider becomes a
// viem transport. Query parameters fill the form and connect at once:
//   index.html?gateway=https://127.0.0.1:PORT/eth&policy=URL-ENCODED-TOML&simulated=1&fresh=1
//
// tests/run.sh leaves pkg/ (wasm-bindgen --target web) and vendor/viem.js here, after which this
// folder is a static site: `python3 -m http.server -d wasm-client/examples`. A browser must be
// told to accept a dev gateway's self-signed certificate (open its /healthz once); the calls
// themselves are sealed with OHTTP to the keys the page verified, whatever TLS carries them.
import init, { ShroudClient } from "./pkg/shroud_wasm.js";
import { createPublicClient, custom } from "viem";

const form = document.getElementById("connect");
const status = (text, state) => {
  document.getElementById("status").textContent = text;
  document.body.dataset.state = state;
};

async function showBlockNumber(gateway, policy, options) {
  status("verifying the gateway's attestation…", "connecting");
  // Rejects, naming the failed check, unless the bundle verifies against the pin (and, with
  // fresh, carries the nonce this connect sent); nothing is sent to a gateway that does not.
  const shroud = await ShroudClient.connect(gateway, policy, options);
  document.getElementById("verdict").textContent =
    JSON.stringify(JSON.parse(shroud.verdict()), null, 2);
  const client = createPublicClient({ transport: custom(shroud.provider()) });
  const block = await client.getBlockNumber();
  document.getElementById("block").textContent = block.toString();
  status(`block ${block}, read over OHTTP from ${gateway}`, "done");
}

function connect() {
  const data = new FormData(form);
  showBlockNumber(data.get("gateway"), data.get("policy"), {
    allowSimulated: data.get("simulated") === "on",
    fresh: data.get("fresh") === "on",
  })
    .catch((error) => status(error.message ?? String(error), "error"));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  connect();
});

try {
  await init(); // fetches and instantiates pkg/shroud_wasm_bg.wasm
} catch (error) {
  status(`could not load the wasm client: ${error.message ?? error}`, "error");
  throw error;
}
const query = new URLSearchParams(location.search);
form.elements.gateway.value = query.get("gateway") ?? "";
form.elements.policy.value = query.get("policy") ?? "";
form.elements.simulated.checked = query.has("simulated");
form.elements.fresh.checked = query.has("fresh");
if (query.has("gateway") && query.has("policy")) connect();
