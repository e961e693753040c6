// ethers 6 through `shroud proxy`: chain id, block number, a balance, and a value transfer signed
// locally by an ethers Wallet and sent as eth_sendRawTransaction; checks the receipt and the
// balances. Exits non-zero on any failure.
//
//     node ethers.mjs [PROXY_URL]      (or env SHROUD_PROXY_URL; run.mjs sets it)

import { JsonRpcProvider, Wallet, formatEther } from "ethers";

import { CHAIN_ID, FUNDED_ADDRESS, FUNDED_KEY, VALUE_WEI, check, proxyUrl, run } from "./common.mjs";

/** Account 1 of ganache's deterministic wallet: the recipient here (viem.mjs pays account 2). */
const RECIPIENT = "0xFFcf8FDEE72ac11b5c542428B35EEF5769C409f0";

const log = (line) => console.log(`ethers: ${line}`);

run("ethers", async () => {
  const url = proxyUrl();
  log(`url ${url}`);
  // A static network: ethers would otherwise retry network detection forever when the proxy is
  // down; the chain id is still read from the node below, and checked.
  const provider = new JsonRpcProvider(url, CHAIN_ID, { staticNetwork: true, pollingInterval: 250 });
  try {
    const chainId = BigInt(await provider.send("eth_chainId", []));
    log(`chain id ${chainId}`);
    check(chainId === BigInt(CHAIN_ID), `chain id ${chainId} is ${CHAIN_ID}`);

    const startBlock = await provider.getBlockNumber();
    log(`block number ${startBlock}`);

    const wallet = new Wallet(FUNDED_KEY, provider);
    check(wallet.address === FUNDED_ADDRESS, `key belongs to ${FUNDED_ADDRESS}`);
    const funded = await provider.getBalance(wallet.address);
    log(`balance of ${wallet.address}: ${formatEther(funded)} ETH`);
    check(funded > VALUE_WEI, "the funded account can pay");

    // Populate (nonce, gas, fees from the node), sign here, send the signed bytes.
    const populated = await wallet.populateTransaction({ to: RECIPIENT, value: VALUE_WEI });
    const signed = await wallet.signTransaction(populated);
    const tx = await provider.broadcastTransaction(signed);
    log(
      `signed locally (type ${populated.type}, nonce ${populated.nonce}, ${formatEther(VALUE_WEI)} ETH to ${RECIPIENT}), eth_sendRawTransaction -> ${tx.hash}`,
    );

    const receipt = await tx.wait(1, 30_000);
    check(receipt !== null, "a receipt");
    log(`receipt: status ${receipt.status}, block ${receipt.blockNumber}, gas used ${receipt.gasUsed}`);
    check(receipt.status === 1, `receipt status ${receipt.status} is 1`);
    check(receipt.hash === tx.hash, "the receipt is for our transaction");

    // Balances just before and at the receipt's block: exact whatever else the chain did.
    const before = receipt.blockNumber - 1;
    const [recipientBefore, recipientAfter, senderBefore, senderAfter] = await Promise.all([
      provider.getBalance(RECIPIENT, before),
      provider.getBalance(RECIPIENT, receipt.blockNumber),
      provider.getBalance(FUNDED_ADDRESS, before),
      provider.getBalance(FUNDED_ADDRESS, receipt.blockNumber),
    ]);
    log(
      `recipient ${RECIPIENT}: ${formatEther(recipientBefore)} -> ${formatEther(recipientAfter)} ETH`,
    );
    check(recipientAfter - recipientBefore === VALUE_WEI, "the recipient received the value");
    const fee = receipt.gasUsed * receipt.gasPrice;
    check(senderBefore - senderAfter === VALUE_WEI + fee, "the sender paid value + fee");

    const endBlock = await provider.getBlockNumber();
    log(`block number now ${endBlock}`);
    check(endBlock > startBlock, "a block was mined");
  } finally {
    provider.destroy();
  }
});
