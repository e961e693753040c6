// @shroud-rpc/client under Node (the "node" export condition): the same client, with the .wasm
// read from disk, since Node's fetch does not read file: URLs.
import { readFile } from "node:fs/promises";

import { ShroudClient as BrowserClient, load, loadWasm } from "./client.js";

const beside = () => readFile(new URL("./shroud_wasm_bg.wasm", import.meta.url));

/** Loads the wasm once: from `wasm` (bytes, a compiled module, a Response) or from disk. */
export function init(wasm) {
  return load(wasm, beside);
}

export class ShroudClient extends BrowserClient {
  static [loadWasm]() {
    return init();
  }
}
