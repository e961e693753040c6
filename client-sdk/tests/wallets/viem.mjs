// viem 2 through `shroud proxy`: chain id, block number, a balance, and a value transfer signed
// locally by a privateKeyToAccount account and sent as eth_sendRawTransaction; checks the
// receipt and the balances. Exits non-zero on any failure.
//
//     node viem.mjs [PROXY_URL]        (or env SHROUD_PROXY_URL; run.mjs sets it)

import { createPublicClient, createWalletClient, defineChain, formatEther, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { CHAIN_ID, FUNDED_ADDRESS, FUNDED_KEY, VALUE_WEI, check, proxyUrl, run } from "./common.mjs";

/** Account 2 of ganache's deterministic wallet: the recipient here (ethers.mjs pays account 1). */
const RECIPIENT = "0x22d491Bde2303f2f43325b2108D26f1eAbA1e32b";

const log = (line) => console.log(`viem: ${line}`);

run("viem", async () => {
  const url = proxyUrl();
  log(`url ${url}`);
  const chain = defineChain({
    id: CHAIN_ID,
    name: "ganache via shroud proxy",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
  });
  const transport = http(url, { retryCount: 0, timeout: 15_000 });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 250 });
  const account = privateKeyToAccount(FUNDED_KEY);
  const walletClient = createWalletClient({ account, chain, transport });

  const chainId = await publicClient.getChainId();
  log(`chain id ${chainId}`);
  check(chainId === CHAIN_ID, `chain id ${chainId} is ${CHAIN_ID}`);

  const startBlock = await publicClient.getBlockNumber({ cacheTime: 0 });
  log(`block number ${startBlock}`);

  check(account.address === FUNDED_ADDRESS, `key belongs to ${FUNDED_ADDRESS}`);
  const funded = await publicClient.getBalance({ address: account.address });
  log(`balance of ${account.address}: ${formatEther(funded)} ETH`);
  check(funded > VALUE_WEI, "the funded account can pay");

  // Prepare (nonce, gas, fees from the node), sign here, send the signed bytes.
  const request = await walletClient.prepareTransactionRequest({ to: RECIPIENT, value: VALUE_WEI });
  const serializedTransaction = await walletClient.signTransaction(request);
  const hash = await walletClient.sendRawTransaction({ serializedTransaction });
  log(
    `signed locally (${request.type}, nonce ${request.nonce}, ${formatEther(VALUE_WEI)} ETH to ${RECIPIENT}), eth_sendRawTransaction -> ${hash}`,
  );

  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 30_000 });
  log(`receipt: status ${receipt.status}, block ${receipt.blockNumber}, gas used ${receipt.gasUsed}`);
  // viem formats the receipt's `status: "0x1"` as "success".
  check(receipt.status === "success", `receipt status ${receipt.status} is success (0x1)`);
  check(receipt.transactionHash === hash, "the receipt is for our transaction");

  // Balances just before and at the receipt's block: exact whatever else the chain did.
  const before = receipt.blockNumber - 1n;
  const [recipientBefore, recipientAfter, senderBefore, senderAfter] = await Promise.all([
    publicClient.getBalance({ address: RECIPIENT, blockNumber: before }),
    publicClient.getBalance({ address: RECIPIENT, blockNumber: receipt.blockNumber }),
    publicClient.getBalance({ address: FUNDED_ADDRESS, blockNumber: before }),
    publicClient.getBalance({ address: FUNDED_ADDRESS, blockNumber: receipt.blockNumber }),
  ]);
  log(
    `recipient ${RECIPIENT}: ${formatEther(recipientBefore)} -> ${formatEther(recipientAfter)} ETH`,
  );
  check(recipientAfter - recipientBefore === VALUE_WEI, "the recipient received the value");
  const fee = receipt.gasUsed * receipt.effectiveGasPrice;
  check(senderBefore - senderAfter === VALUE_WEI + fee, "the sender paid value + fee");

  const endBlock = await publicClient.getBlockNumber({ cacheTime: 0 });
  log(`block number now ${endBlock}`);
  check(endBlock > startBlock, "a block was mined");
});
