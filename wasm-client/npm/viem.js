// "@shroud-rpc/client/viem" in browsers and bundlers.
import { ShroudClient } from "./client.js";
import { transportOver } from "./transport.js";

/** A viem transport through a Shroud gateway (see viem.d.ts). */
export function shroudTransport(options) {
  return transportOver(ShroudClient, options);
}
