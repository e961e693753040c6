// @shroud-rpc/client in browsers and bundlers: each .wasm is fetched from next to client.js when a
// policy needs it. The viem transport is in "@shroud-rpc/client/viem", so that this entry needs
// no viem.
export { ShroudClient, init } from "./client.js";
