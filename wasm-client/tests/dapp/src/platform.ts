// The second page of the throwaway dapp: a dapp that ships every wasm module of the package
// (esbuild's `file` loader copies each next to the bundle) and tells `init` where they are, so
// that `connect` loads only the module of the platform its policy pins. tests/browser/dapp.mjs
// watches which .wasm the page fetches.
import { ShroudClient, init, type ShroudRpcError } from "@shroud-rpc/client";
import all from "@shroud-rpc/client/shroud_wasm_bg.wasm";
import nitro from "@shroud-rpc/client/shroud_wasm_nitro_bg.wasm";
import sevSnp from "@shroud-rpc/client/shroud_wasm_sev-snp_bg.wasm";
import sgx from "@shroud-rpc/client/shroud_wasm_sgx_bg.wasm";
import tdx from "@shroud-rpc/client/shroud_wasm_tdx_bg.wasm";

const here = (file: string) => new URL(file, import.meta.url);

/** Connects with `policy`; what it established, or how it was refused. */
async function connect({ url, policy }: { url: string; policy: string }) {
  try {
    const client = await ShroudClient.connect(url, policy, { allowSimulated: true });
    const block = await client.request<string>({ method: "eth_blockNumber" });
    return { platform: client.verdict().platform, block };
  } catch (error) {
    return { code: (error as ShroudRpcError).code, message: String((error as Error).message) };
  }
}

declare global {
  interface Window {
    platforms: { connect: typeof connect };
  }
}

await init({ all: here(all), tdx: here(tdx), sgx: here(sgx), "sev-snp": here(sevSnp), nitro: here(nitro) });
window.platforms = { connect };
document.body.dataset.state = "ready";
