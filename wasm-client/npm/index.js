// @shroud-rpc/client in browsers and bundlers: the .wasm is fetched from next to client.js. The
// viem transport is in "@shroud-rpc/client/viem", so that this entry needs no viem.
export { ShroudClient, init } from "./client.js";
