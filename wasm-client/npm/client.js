// The package's core, shared by every entry point: which wasm module a policy needs and loading
// it once, and `ShroudClient` over the wasm-bindgen class of the same name
// (wasm-client/src/client.rs).
//
// The package has five wasm modules, each with its own wasm-bindgen glue (build.sh): one per
// platform verifier, and one with all of them. A dapp pins one deployment, so `connect` loads
// the module of the one platform its policy pins (`moduleFor`), on its first use; a policy that
// pins several platforms, or none but the simulated one (which every module verifies), loads
// the all-platform module. A module refuses a policy that pins a platform it has no verifier
// for, and `connect` then takes the all-platform module: a wrong choice costs a download, never
// an accept.
//
// The policy is the dapp's TOML (the format of `shroud attest --policy`). The modules link no
// TOML parser (a parser crate would be a tenth of each module's size budget); `readPolicy` reads
// it here with smol-toml, which the package bundles, and hands the modules its JSON document.
//
// Only where a .wasm comes from differs between hosts. In browsers and bundlers (index.js,
// viem.js) it is fetched from `new URL("./shroud_wasm_PLATFORM_bg.wasm", import.meta.url)`, next
// to this file, a form Vite and webpack recognise and copy (each written out, for them to find);
// under Node (node.js, viem.node.js, which the "node" export condition selects) it is read from
// disk, as Node's fetch does not read file: URLs. The choice travels as a value (a subclass),
// never as a module side effect, so that "sideEffects": false holds for every file.

import { parse as parseToml } from "smol-toml";

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

/** How deep a policy's tables and arrays may nest: `accept`, a rule, `min_snp_tcb`, and room. */
const MAX_POLICY_DEPTH = 8;

/** A refused policy, as the wasm modules refuse one: an Error with EIP-1193 code 4900. */
function policyError(message) {
  return Object.assign(new Error(`policy: invalid policy: ${message}`), { code: 4900 });
}

/**
 * Reads a policy file's TOML: its JSON document, for the wasm module, and the platforms its
 * `[[accept]]` rules pin. What no policy key takes (floats, dates and times, integers beyond
 * 2^53) is refused here, naming the key; everything else the module checks, as `shroud` does.
 */
export function readPolicy(policyToml) {
  let document;
  try {
    document = parseToml(String(policyToml), {
      integersAsBigInt: "asNeeded",
      unsafeKeyBehaviour: "throw",
      maxDepth: MAX_POLICY_DEPTH,
    });
  } catch (error) {
    const where = Number.isInteger(error?.line) ? `TOML line ${error.line}, column ${error.column}: ` : "TOML: ";
    const what = String(error?.message ?? error).split("\n")[0].replace(/^Invalid TOML document: /, "");
    throw policyError(`${where}${what}`);
  }
  const json = JSON.stringify(document, function (key, value) {
    const raw = this[key];
    if (raw instanceof Date || typeof raw === "bigint" || (typeof raw === "number" && !Number.isInteger(raw))) {
      throw policyError(`${key}: a policy has no floats, dates or times, nor integers beyond 2^53`);
    }
    return value;
  });
  const rules = Array.isArray(document.accept) ? document.accept : [];
  const platforms = new Set(rules.map((rule) => rule?.platform).filter((p) => typeof p === "string"));
  return { json, platforms };
}

/**
 * The module a policy needs: the platform of its `[[accept]]` rules when they pin exactly one
 * platform besides `simulated`, else "all".
 */
export function moduleFor(platforms) {
  const pinned = new Set(platforms);
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
    const policy = readPolicy(policyToml);
    const name = single ? "all" : moduleFor(policy.platforms);
    const locate = (module) => this[locateWasm](module);
    const Wasm = await load(name, locate);
    try {
      return new this(await Wasm.connect(url, policy.json, options), token);
    } catch (error) {
      if (name === "all" || !NO_VERIFIER.test(error?.message ?? "")) throw error;
      const All = await load("all", locate);
      return new this(await All.connect(url, policy.json, options), token);
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
