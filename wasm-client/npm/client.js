// The package's core, shared by every entry point: which wasm module a policy needs and loading
// it once, and `ShroudClient` over the wasm-bindgen class of the same name
// (wasm-client/src/client.rs).
//
// The package has five wasm modules, each with its own wasm-bindgen glue (build.sh): one per
// platform verifier, and one with all of them. A dapp pins one deployment, so `connect` loads
// the module of the one platform its policy pins (`moduleFor`), on its first use; a policy that
// pins several platforms, or none but the simulated one (which every module verifies), loads
// the all-platform module. A module refuses a policy that pins a platform it has no verifier
// for, and `connect` then takes the all-platform module: a misread policy costs a download,
// never an accept.
//
// Only where a .wasm comes from differs between hosts. In browsers and bundlers (index.js,
// viem.js) it is fetched from `new URL("./shroud_wasm_PLATFORM_bg.wasm", import.meta.url)`, next
// to this file, a form Vite and webpack recognise and copy (each written out, for them to find);
// under Node (node.js, viem.node.js, which the "node" export condition selects) it is read from
// disk, as Node's fetch does not read file: URLs. The choice travels as a value (a subclass),
// never as a module side effect, so that "sideEffects": false holds for every file.

/** The modules: their glue, their .wasm next to this file, and its file name. */
const MODULES = {
  all: {
    glue: () => import("./shroud_wasm.js"),
    url: () => new URL("./shroud_wasm_bg.wasm", import.meta.url),
    file: "shroud_wasm_bg.wasm",
  },
  tdx: {
    glue: () => import("./shroud_wasm_tdx.js"),
    url: () => new URL("./shroud_wasm_tdx_bg.wasm", import.meta.url),
    file: "shroud_wasm_tdx_bg.wasm",
  },
  sgx: {
    glue: () => import("./shroud_wasm_sgx.js"),
    url: () => new URL("./shroud_wasm_sgx_bg.wasm", import.meta.url),
    file: "shroud_wasm_sgx_bg.wasm",
  },
  "sev-snp": {
    glue: () => import("./shroud_wasm_sev-snp.js"),
    url: () => new URL("./shroud_wasm_sev-snp_bg.wasm", import.meta.url),
    file: "shroud_wasm_sev-snp_bg.wasm",
  },
  nitro: {
    glue: () => import("./shroud_wasm_nitro.js"),
    url: () => new URL("./shroud_wasm_nitro_bg.wasm", import.meta.url),
    file: "shroud_wasm_nitro_bg.wasm",
  },
};

/** The file name of module `name` ("all" or a platform), for hosts that read it themselves. */
export function moduleFile(name) {
  return MODULES[name].file;
}

/**
 * The module a policy needs: the platform of its `[[accept]]` rules when they pin exactly one
 * platform besides `simulated`, else "all". Read from the TOML's `platform = "…"` keys; what
 * this misses the module refuses, and `connect` falls back to "all".
 */
export function moduleFor(policyToml) {
  const pinned = new Set();
  for (const [, platform] of String(policyToml).matchAll(/["']?\bplatform["']?\s*=\s*["']([^"'\n]*)["']/g)) {
    pinned.add(platform);
  }
  pinned.delete("simulated");
  const [platform] = pinned;
  return pinned.size === 1 && platform !== "all" && Object.hasOwn(MODULES, platform) ? platform : "all";
}

/** Where modules are, as `init` was told; `single`: one source for every policy. */
const sources = {};
let single = false;
/** Module name -> the promise of its wasm-bindgen `ShroudClient` class, once loading. */
const loading = {};

/**
 * Loads module `name` once, from the source `init` named or what `locate(name)` returns; a
 * failed load may be tried again.
 */
function load(name, locate) {
  if (loading[name] === undefined) {
    const promise = (async () => {
      const glue = await MODULES[name].glue();
      await glue.default({ module_or_path: await (sources[name] ?? locate(name)) });
      return glue.ShroudClient;
    })();
    loading[name] = promise;
    promise.catch(() => {
      if (loading[name] === promise) delete loading[name];
    });
  }
  return loading[name];
}

const isSource = (wasm) =>
  typeof wasm !== "object" ||
  wasm === null ||
  (Object.getPrototypeOf(wasm) !== Object.prototype && Object.getPrototypeOf(wasm) !== null);

/**
 * `init(source)`: the all-platform module from `source`, loaded now and used for every policy
 * (a dapp that ships one .wasm). `init({ tdx: source, all: source, … })`: where those modules
 * are, loaded when a policy needs them. `init()`: nothing to do, as for a dapp that never calls
 * it: each module is found by `locate`.
 */
export function initWith(wasm, locate) {
  if (wasm === undefined) return Promise.resolve();
  if (isSource(wasm) || typeof wasm.then === "function") {
    sources.all = wasm;
    single = true;
    return load("all", locate).then(() => undefined);
  }
  for (const [name, source] of Object.entries(wasm)) {
    if (!Object.hasOwn(MODULES, name)) {
      return Promise.reject(new TypeError(`init: no wasm module ${JSON.stringify(name)} (all, ${Object.keys(MODULES).slice(1).join(", ")})`));
    }
    sources[name] = source;
  }
  return Promise.resolve();
}

/** Where the browser finds module `name`: next to this file. */
const besideThisFile = (name) => MODULES[name].url();

/** The browser's `init`. */
export function init(wasm) {
  return initWith(wasm, besideThisFile);
}

/** The static method that finds a module's .wasm for `connect`; node.js overrides it. */
export const locateWasm = Symbol("shroud.locateWasm");

/** Only `connect` makes clients. */
const token = Symbol("shroud.ShroudClient");

/** The refusal of a module that lacks the verifier of a platform its policy pins. */
const NO_VERIFIER = /^policy: this build has no verifier for /;

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

  static [locateWasm](name) {
    return besideThisFile(name);
  }

  /**
   * Loads the wasm module the policy needs, fetches the gateway's attestation bundle, verifies
   * it in wasm against `policyToml` and checks that the served OHTTP keys are the attested ones.
   * Rejects (code 4900) naming the failed check, and then nothing was sent.
   */
  static async connect(url, policyToml, options) {
    const name = single ? "all" : moduleFor(policyToml);
    const locate = (module) => this[locateWasm](module);
    const Wasm = await load(name, locate);
    try {
      return new this(await Wasm.connect(url, policyToml, options), token);
    } catch (error) {
      if (name === "all" || !NO_VERIFIER.test(error?.message ?? "")) throw error;
      const All = await load("all", locate);
      return new this(await All.connect(url, policyToml, options), token);
    }
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
