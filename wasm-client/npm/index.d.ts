// Type declarations of @shroud-rpc/client (written by hand; the implementation is client.js over
// the wasm-bindgen output). The viem transport is declared in viem.d.ts.

/** Options of {@link ShroudClient.connect}; both `false` when left out. */
export interface ConnectOptions {
  /**
   * Accept the simulated TEE of `shroud-gateway --dev`. Development only: simulated evidence
   * proves nothing about the code or the machine.
   */
  allowSimulated?: boolean;
  /**
   * Ask for evidence made for this connect (a random `?nonce=` that the enclave must bind) and
   * refuse a bundle without it; asked again, with a new nonce, whenever the verdict expires.
   */
  fresh?: boolean;
}

/** An EIP-1193 request. */
export interface RequestArguments {
  readonly method: string;
  readonly params?: readonly unknown[] | object;
}

/** A member of a batch: a JSON-RPC 2.0 request object. */
export interface JsonRpcRequest extends RequestArguments {
  readonly jsonrpc?: "2.0";
  readonly id?: string | number | null;
}

/** The error member of a JSON-RPC response. */
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** An answer in a batch, in the order of the requests, with the request's `id`. */
export type JsonRpcResponse = { jsonrpc: "2.0"; id: string | number | null } & (
  | { result: unknown; error?: undefined }
  | { error: JsonRpcErrorObject; result?: undefined }
);

/**
 * What a call rejects with: an `Error` with an EIP-1193 / JSON-RPC `code`. `4900` when the
 * gateway was refused (attestation, policy, keys: then nothing was sent) or could not be
 * reached; the gateway's or node's JSON-RPC code otherwise; `4200` for `eth_subscribe`, which
 * OHTTP cannot carry.
 */
export interface ShroudRpcError extends Error {
  code: number;
  data?: unknown;
}

/** What the verification of the gateway's attestation established. */
export interface Verdict {
  verdict: "trusted";
  platform: "nitro" | "tdx" | "sgx" | "sev-snp" | "simulated";
  /** The vendor's measurement fields, lower-case hex. */
  measurements: Record<string, string>;
  tcb_status: string;
  /** SHA-256 of the attested key, hex. */
  spki_sha256: string;
  /** Validity of the certificate, seconds since the Unix epoch. */
  not_before: number;
  not_after: number;
  /** The nonce the evidence was made for (`fresh`), hex; `null` otherwise. */
  nonce: string | null;
}

/** Events of the provider. */
export interface Eip1193Events {
  /** The first answered `eth_chainId`. */
  connect(info: { chainId: string }): void;
  /** A later `eth_chainId` answer that differs from the first. */
  chainChanged(chainId: string): void;
}

/**
 * An EIP-1193 provider over a {@link ShroudClient}: for viem (`custom(provider)`), ethers
 * (`new BrowserProvider(provider)`) and web3.js (`new Web3(provider)`).
 */
export interface Eip1193Provider {
  /** One call: its result; rejects with a {@link ShroudRpcError}. */
  request<T = unknown>(args: RequestArguments): Promise<T>;
  /** A batch (as web3.js's `BatchRequest` sends it): one response object per request, in order. */
  request(batch: readonly JsonRpcRequest[]): Promise<JsonRpcResponse[]>;
  on<E extends keyof Eip1193Events>(event: E, listener: Eip1193Events[E]): this;
  on(event: string, listener: (...args: any[]) => void): this;
  removeListener<E extends keyof Eip1193Events>(event: E, listener: Eip1193Events[E]): this;
  removeListener(event: string, listener: (...args: any[]) => void): this;
  listenerCount(event: string): number;
}

/**
 * A gateway whose attestation verified: every call is sealed with Oblivious HTTP (RFC 9458) to
 * the keys its enclave attested.
 *
 * ```ts
 * const client = await ShroudClient.connect("https://rpc.example/eth", policyToml, { fresh: true });
 * const block = await client.request<string>({ method: "eth_blockNumber" });
 * const ethersProvider = new BrowserProvider(client.provider());
 * ```
 */
export declare class ShroudClient {
  private constructor();
  /**
   * Fetches `GET /.well-known/shroud/attestation` from the gateway of `url`
   * (`https://host[:port]/CHAIN`), verifies the certificate in wasm against `policyToml` (one
   * `[[accept]]` table per acceptable build, each pinning a complete identity of the code) with
   * the platform verifiers and pinned vendor roots, and checks that the served OHTTP keys are
   * the attested ones. Loads the wasm module the policy needs first, once (see {@link init}):
   * the one of the platform it pins, or the all-platform module. Rejects with a
   * {@link ShroudRpcError} of code 4900 naming the failed check; nothing is sent then.
   */
  static connect(url: string, policyToml: string, options?: ConnectOptions): Promise<ShroudClient>;
  /** One call, sealed: its result; rejects with a {@link ShroudRpcError}. */
  request<T = unknown>(args: RequestArguments): Promise<T>;
  /** A batch: one response object per request, in order. */
  request(batch: readonly JsonRpcRequest[]): Promise<JsonRpcResponse[]>;
  /** A new EIP-1193 provider over this client (with its own listeners). */
  provider(): Eip1193Provider;
  /** What the verification established. */
  verdict(): Verdict;
}

/** Where a .wasm is: a URL, a fetched `Response`, the bytes or a compiled module. */
export type WasmSource = string | URL | Request | Response | ArrayBuffer | ArrayBufferView | WebAssembly.Module;

/**
 * The package's wasm modules: one per platform verifier, which a policy pinning that platform
 * loads, and `all`, with every verifier, for a policy that pins several platforms (or none but
 * `simulated`, which every module verifies). Files `shroud_wasm_bg.wasm` (all) and
 * `shroud_wasm_PLATFORM_bg.wasm`.
 */
export type WasmModule = "all" | "tdx" | "sgx" | "sev-snp" | "nitro";

/**
 * Says where the wasm modules are; only needed when they are not next to the package's
 * JavaScript (browsers fetch them from there, Node reads them from disk), e.g. with esbuild,
 * which copies a file it is told to (loader `file`) but does not rewrite `new URL(…,
 * import.meta.url)`. {@link ShroudClient.connect} loads the module its policy needs, once.
 *
 * - `init({ tdx: new URL(tdxWasm, import.meta.url), all: … })`: where those modules are, each
 *   loaded when a policy first needs it;
 * - `init(source)`: the all-platform module from `source`, loaded now and used for every policy
 *   (a dapp that ships one .wasm:
 *   `import wasm from "@shroud-rpc/client/shroud_wasm_bg.wasm"`);
 * - `init()`: nothing to load ahead; modules are found next to the package's JavaScript.
 */
export declare function init(
  wasm?: WasmSource | Promise<WasmSource> | Partial<Record<WasmModule, WasmSource | Promise<WasmSource>>>,
): Promise<void>;
