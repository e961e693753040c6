// "@shroud-rpc/client/viem" under Node: the transport over node.js's client.
import { ShroudClient } from "./node.js";
import { transportOver } from "./transport.js";

/** A viem transport through a Shroud gateway (see viem.d.ts). */
export function shroudTransport(options) {
  return transportOver(ShroudClient, options);
}
