// The package's core, shared by every entry point: loading the wasm once, and `ShroudClient`
// over the wasm-bindgen class of the same name (wasm-client/src/client.rs).
//
// Only where the .wasm comes from differs between hosts. In browsers and bundlers (index.js,
// viem.js) it is fetched from `new URL("./shroud_wasm_bg.wasm", import.meta.url)`, next to
// this file, a form Vite and webpack recognise and copy; under Node (node.js, viem.node.js,
// which the "node" export condition selects) it is read from disk, as Node's fetch does not
// read file: URLs. The choice travels as a value (a subclass), never as a module side effect, so
// that "sideEffects": false holds for every file.
import initWasm, { ShroudClient as WasmClient } from "./shroud_wasm.js";

let loading;

/**
 * Instantiates the wasm module once: from `wasm` when given, else from what `fallback()`
 * returns. Later calls return the first call's promise; a failed load may be tried again.
 */
export function load(wasm, fallback) {
  if (loading === undefined) {
    loading = (async () => {
      await initWasm({ module_or_path: await (wasm ?? fallback()) });
    })();
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

/** The browser's default: the .wasm next to this module. */
export function init(wasm) {
  return load(wasm, () => new URL("./shroud_wasm_bg.wasm", import.meta.url));
}

/** The static method through which `connect` loads the wasm; node.js overrides it. */
export const loadWasm = Symbol("shroud.loadWasm");

/** Only `connect` makes clients. */
const token = Symbol("shroud.ShroudClient");

/**
 * A gateway whose attestation verified: every call is sealed with Oblivious HTTP to the keys its
 * enclave attested.
 */
export class ShroudClient {
  #inner;
  #provider;

  /** Use `ShroudClient.connect`. */
  constructor(inner, key) {
    if (key !== token) {
      throw new TypeError("use `await ShroudClient.connect(url, policyToml, options)`");
    }
    this.#inner = inner;
    this.#provider = inner.provider();
  }

  static [loadWasm]() {
    return init();
  }

  /**
   * Fetches the gateway's attestation bundle, verifies it in wasm against `policyToml` and checks
   * that the served OHTTP keys are the attested ones. Rejects (code 4900) naming the failed check,
   * and then nothing was sent.
   */
  static async connect(url, policyToml, options) {
    await this[loadWasm]();
    return new this(await WasmClient.connect(url, policyToml, options), token);
  }

  /**
   * One JSON-RPC call, `{ method, params }`, sealed: resolves to its result, rejects with an Error
   * carrying `code` (and `data`). An array of request objects is a batch: it resolves to the
   * response objects, in order.
   */
  request(args) {
    if (typeof args !== "object" || args === null) {
      const error = new TypeError(
        "request takes { method, params } (or an array of them), as EIP-1193's request does",
      );
      error.code = -32600;
      return Promise.reject(error);
    }
    return this.#provider.request(args);
  }

  /** An EIP-1193 provider over this client (viem `custom`, ethers `BrowserProvider`, web3.js). */
  provider() {
    return this.#inner.provider();
  }

  /** What the verification established: platform, measurements, TCB status, validity, nonce. */
  verdict() {
    return JSON.parse(this.#inner.verdict());
  }
}
