// A dapp as a developer writes one against the published package: viem through
// shroudTransport, ethers through BrowserProvider, web3.js's BatchRequest through the EIP-1193
// provider. Bundled by esbuild (with `--loader:.wasm=file`, which copies the package's .wasm next
// to the bundle), type-checked by tsc against the package's declarations. The page does what it
// is asked (window.dapp) and reports what it saw; tests/browser/dapp.mjs asserts.
import { ShroudClient, init, type ShroudRpcError } from "@shroud-rpc/client";
import { shroudTransport } from "@shroud-rpc/client/viem";
import wasmUrl from "@shroud-rpc/client/shroud_wasm_bg.wasm";
import { BrowserProvider } from "ethers";
import { BaseError, createPublicClient, createWalletClient, defineChain, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { Web3 } from "web3";

/** Ganache's deterministic account 0 (1000 ETH) pays; account 5 receives. */
const FUNDED_KEY: Hex = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d";
const RECIPIENT = "0x95cED938F7991cd0dFcb48F0a06a40FA1aF46EBC";
const VALUE_WEI = 1_000_000_000_000_000n;

export interface Config {
  /** The gateway's chain URL, https://127.0.0.1:PORT/eth. */
  url: string;
  /** The policy TOML. */
  policy: string;
}

const chain = (url: string) =>
  defineChain({
    id: 1337,
    name: "ganache via Shroud",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
  });

const log = (line: string) => {
  document.getElementById("log")!.textContent += `${line}\n`;
};

/** viem: a block read and a transfer signed here, sent and confirmed, through shroudTransport. */
async function viem({ url, policy }: Config) {
  // One transport for both clients: it connects (verifies the gateway) on its first request, once.
  const transport = shroudTransport({ url, policy, allowSimulated: true, retryCount: 0 });
  const publicClient = createPublicClient({ chain: chain(url), transport, pollingInterval: 250 });
  const account = privateKeyToAccount(FUNDED_KEY);
  const walletClient = createWalletClient({ account, chain: chain(url), transport });
  const block = await publicClient.getBlock();
  log(`viem: block ${block.number} ${block.hash}`);
  const nonce = await publicClient.getTransactionCount({ address: account.address });
  const hash = await walletClient.sendTransaction({ to: RECIPIENT, value: VALUE_WEI });
  log(`viem: sent ${hash}`);
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 30_000 });
  log(`viem: receipt ${receipt.status} in block ${receipt.blockNumber}`);
  return {
    blockNumber: Number(block.number),
    blockHash: block.hash,
    from: account.address,
    nonce,
    hash,
    receiptStatus: receipt.status,
    receiptBlock: Number(receipt.blockNumber),
  };
}

/** ethers: BrowserProvider over the client's EIP-1193 provider. */
async function ethers({ url, policy }: Config, hash: string) {
  const client = await ShroudClient.connect(url, policy, { allowSimulated: true });
  const provider = new BrowserProvider(client.provider());
  const blockNumber = await provider.getBlockNumber();
  const network = await provider.getNetwork();
  const receipt = await provider.getTransactionReceipt(hash);
  log(`ethers: block ${blockNumber}, chain ${network.chainId}, receipt status ${receipt?.status}`);
  return {
    blockNumber,
    chainId: Number(network.chainId),
    receiptStatus: receipt?.status ?? null,
    platform: client.verdict().platform,
  };
}

/** web3.js 4: a BatchRequest (one JSON-RPC array through the provider). */
async function web3({ url, policy }: Config) {
  const client = await ShroudClient.connect(url, policy, { allowSimulated: true });
  const web3 = new Web3(client.provider());
  const batch = new web3.BatchRequest();
  const requests = [
    { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] },
    { jsonrpc: "2.0", id: 2, method: "eth_chainId", params: [] },
    { jsonrpc: "2.0", id: 3, method: "eth_getBalance", params: [RECIPIENT, "latest"] },
  ] as const;
  for (const request of requests) void batch.add({ ...request, params: [...request.params] });
  const answers = await batch.execute({ timeout: 30_000 });
  log(`web3.js: batch of ${requests.length} -> ${JSON.stringify(answers)}`);
  return answers.map((answer) => ({
    id: answer.id ?? null,
    result: "result" in answer ? answer.result : undefined,
    error: "error" in answer ? answer.error : undefined,
  }));
}

/** The EIP-1193 code of an error, looking through viem's wrappers to the first one with a code. */
function codeOf(error: unknown): number | undefined {
  if (error instanceof BaseError) {
    const coded = error.walk((e) => typeof (e as { code?: unknown }).code === "number");
    return (coded as { code?: number } | null)?.code;
  }
  return (error as ShroudRpcError).code;
}

const messageOf = (error: unknown) =>
  error instanceof BaseError ? `${error.shortMessage} ${error.details}` : String((error as Error)?.message ?? error);

/** Every way of using the package with a wrong pin; each must fail, and nothing be sent. */
async function wrongPin({ url, policy }: Config) {
  const outcomes: { what: string; code?: number; message: string }[] = [];
  const attempt = async (what: string, call: () => Promise<unknown>) => {
    try {
      const value = await call();
      outcomes.push({ what, message: `succeeded: ${JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `${v}` : v))}` });
    } catch (error) {
      outcomes.push({ what, code: codeOf(error), message: messageOf(error) });
    }
  };
  await attempt("ShroudClient.connect", () => ShroudClient.connect(url, policy, { allowSimulated: true }));
  const transport = shroudTransport({ url, policy, allowSimulated: true, retryCount: 0 });
  const publicClient = createPublicClient({ chain: chain(url), transport });
  const walletClient = createWalletClient({ account: privateKeyToAccount(FUNDED_KEY), chain: chain(url), transport });
  await attempt("viem getBlockNumber", () => publicClient.getBlockNumber());
  await attempt("viem sendTransaction", () =>
    walletClient.sendTransaction({ to: RECIPIENT, value: VALUE_WEI, gas: 21_000n, nonce: 0 }),
  );
  for (const outcome of outcomes) log(`wrong pin: ${outcome.what}: ${outcome.code} ${outcome.message}`);
  return outcomes;
}

declare global {
  interface Window {
    dapp: {
      viem: typeof viem;
      ethers: typeof ethers;
      web3: typeof web3;
      wrongPin: typeof wrongPin;
    };
  }
}

try {
  // esbuild does not rewrite `new URL("./x.wasm", import.meta.url)` inside packages; its file
  // loader gives the copied .wasm's URL instead, relative to this bundle.
  await init(new URL(wasmUrl, import.meta.url));
  window.dapp = { viem, ethers, web3, wrongPin };
  document.body.dataset.state = "ready";
} catch (error) {
  log(`could not load the wasm: ${error}`);
  document.body.dataset.state = "error";
}
