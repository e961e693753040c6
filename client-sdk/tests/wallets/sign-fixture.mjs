// Generates the pre-signed transfer that client-sdk/tests/dev_node.rs sends (its RAW_TRANSFER
// constant): a legacy EIP-155 value transfer from ganache's deterministic account 0, nonce 0,
// chain id 1337, fixed gas price and limit, to a fixed recipient. Signing is deterministic
// (RFC 6979), so running this again prints the same bytes.
//
//     node client-sdk/tests/wallets/sign-fixture.mjs

import { Transaction, Wallet } from "ethers";

import { CHAIN_ID, FUNDED_KEY } from "./common.mjs";

const wallet = new Wallet(FUNDED_KEY);
const request = {
  type: 0,
  chainId: CHAIN_ID,
  nonce: 0,
  to: "0x1111111111111111111111111111111111111111",
  value: 1_000_000_000_000_000_000n, // 1 ETH
  gasPrice: 2_000_000_000n, // 2 gwei, above ganache's first base fee (0.875 gwei)
  gasLimit: 21_000n,
  data: "0x",
};
const raw = await wallet.signTransaction(request);
const tx = Transaction.from(raw);

console.log(`from:      ${tx.from}`);
console.log(`to:        ${tx.to}`);
console.log(`value:     0x${tx.value.toString(16)}`);
console.log(`nonce:     ${tx.nonce}`);
console.log(`chain id:  ${tx.chainId}`);
console.log(`gas price: ${tx.gasPrice}`);
console.log(`gas limit: ${tx.gasLimit}`);
console.log(`hash:      ${tx.hash}`);
console.log(`raw:       ${raw}`);
