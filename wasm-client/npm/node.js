// @shroud-rpc/client under Node (the "node" export condition): the same client, with each .wasm
// read from disk, since Node's fetch does not read file: URLs.
import { readFile } from "node:fs/promises";

import { ShroudClient as BrowserClient, initWith, locateWasm, moduleFile } from "./client.js";

/** Module `name`'s .wasm, from next to this file. */
const fromDisk = (name) => readFile(new URL(`./${moduleFile(name)}`, import.meta.url));

/**
 * Where the wasm modules are (bytes, a compiled module, a Response, or a record of them by
 * module): see index.d.ts. Without it each module is read from disk when a policy needs it.
 */
export function init(wasm) {
  return initWith(wasm, fromDisk);
}

export class ShroudClient extends BrowserClient {
  static [locateWasm](name) {
    return fromDisk(name);
  }
}
