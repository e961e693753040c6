// Type declarations of "@shroud-rpc/client/viem" (viem is an optional peer dependency).
import type { CustomTransport, CustomTransportConfig } from "viem";

import type { ConnectOptions } from "./index.js";

/** {@link shroudTransport}'s options: the gateway, the policy, connect's options and viem's. */
export interface ShroudTransportConfig extends ConnectOptions, CustomTransportConfig {
  /** The gateway's chain URL, `https://host[:port]/CHAIN`. */
  url: string;
  /** The policy TOML: one `[[accept]]` table per acceptable build. */
  policy: string;
}

/**
 * A viem transport (`transport:` of `createPublicClient` / `createWalletClient`) through a
 * Shroud gateway: on its first request it connects a `ShroudClient` (verifying the gateway's
 * attestation against `policy`), once; every call then goes sealed with OHTTP through the
 * client's EIP-1193 provider. A refused gateway rejects every request with viem's
 * `ProviderDisconnectedError` (code 4900), and nothing is sent to it; each later request tries
 * to connect again, as does the request after a call failed with 4900 (unreachable, or the
 * gateway's OHTTP keys rotated since the connect).
 *
 * ```ts
 * const client = createPublicClient({ chain: mainnet, transport: shroudTransport({ url, policy }) });
 * ```
 */
export declare function shroudTransport(config: ShroudTransportConfig): CustomTransport;
