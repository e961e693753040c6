// The viem transport over a given ShroudClient class (the browser's or Node's): viem.js and
// viem.node.js each bind it to theirs. viem is an optional peer dependency of the package; only
// the "@shroud-rpc/client/viem" entry points import this file.
import { custom } from "viem";

/**
 * A viem `custom` transport whose provider connects `Client` to `url` with `policy` on its first
 * request, once: concurrent first requests share the one connect, and a failed connect is tried
 * again by the next request (a refused gateway was sent nothing), as is the connect after a call
 * failed with 4900 (e.g. the OHTTP keys rotated). Every call goes through the client's EIP-1193
 * provider, sealed with OHTTP. Options other than `url`, `policy`,
 * `allowSimulated` and `fresh` are viem's `custom` options (`key`, `name`, `retryCount`,
 * `retryDelay`).
 */
export function transportOver(Client, options) {
  const { url, policy, allowSimulated = false, fresh = false, ...config } = options ?? {};
  if (typeof url !== "string") {
    throw new TypeError("shroudTransport: url must be the gateway's https://host[:port]/CHAIN");
  }
  if (typeof policy !== "string") {
    throw new TypeError("shroudTransport: policy must be a policy TOML string ([[accept]] tables)");
  }
  let connecting;
  const connect = () => {
    connecting ??= Client.connect(url, policy, { allowSimulated, fresh }).then(
      (client) => client.provider(),
      (error) => {
        connecting = undefined;
        throw error;
      },
    );
    return connecting;
  };
  const provider = {
    async request(args) {
      const connection = connect();
      const client = await connection;
      try {
        return await client.request(args);
      } catch (error) {
        // 4900 from a call: the gateway could not be reached, or no longer knows the OHTTP keys
        // of this connect (they rotate every 12 h). The next request connects afresh, verifying
        // the gateway again; this one is not repeated, as it may have been relayed.
        if (error?.code === 4900 && connecting === connection) connecting = undefined;
        throw error;
      }
    },
  };
  return custom(provider, { key: "shroud", name: "Shroud", ...config });
}
