// web3.js 4 through `shroud proxy`: chain id, block number, a balance, a value transfer signed
// locally by a web3.js account (nonce, gas and fees filled from the node) and sent as
// eth_sendRawTransaction, its receipt and the balances, then a BatchRequest (one HTTP request
// holding a JSON-RPC array) whose answers must agree with the single calls. Exits non-zero on any
// failure.
//
//     node web3js.mjs [PROXY_URL]                (or env SHROUD_PROXY_URL; run.mjs sets it)
//     node web3js.mjs --wrong-pin PROXY_URL      a proxy started with a wrong --pin: a read, a
//                                                transaction signed offline (sent as a wallet
//                                                sends it, and as raw bytes) and a batch must each
//                                                fail with the proxy's error as web3.js shows it
//
// In --wrong-pin mode no call is eth_chainId: run.mjs counts every other method ganache handles
// (eth_chainId is the gateway's health probe), so any forwarded call would show.

import { Web3, eth, utils } from "web3";

import {
  CHAIN_ID,
  CODE_UNTRUSTED_GATEWAY,
  FUNDED_ADDRESS,
  FUNDED_KEY,
  PIN_MISMATCH_MESSAGE,
  VALUE_WEI,
  check,
  loopbackUrl,
  proxyUrl,
  run,
} from "./common.mjs";

/** Account 3 of ganache's deterministic wallet: the recipient here (ethers 1, viem 2, web3.py 4). */
const RECIPIENT = "0xE11BA2b4D45Eaed5996Cd0823791E0C93114882d";

const log = (line) => console.log(`web3.js: ${line}`);

/** A Web3 on `url` whose HTTP provider records the methods it sends, and its batches (JSON-RPC arrays). */
function connect(url) {
  const web3 = new Web3({
    provider: url,
    config: {
      // Receipt polling fast enough for ganache's instant mining, bounded well below run.mjs's
      // script timeout.
      transactionPollingInterval: 250,
      transactionReceiptPollingInterval: 250,
      transactionPollingTimeout: 30_000,
      transactionSendTimeout: 15_000,
    },
  });
  const provider = web3.provider;
  const batches = [];
  const calls = [];
  const request = provider.request.bind(provider);
  provider.request = (payload, ...rest) => {
    if (Array.isArray(payload)) batches.push(payload.map((call) => call.method));
    else calls.push(payload.method);
    return request(payload, ...rest);
  };
  return { web3, batches, calls };
}

/** Runs `call`, which must throw; returns the error. */
async function mustFail(what, call) {
  try {
    const value = await call();
    throw new Error(`${what} succeeded through a wrong pin: ${JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `${v}` : v))}`);
  } catch (error) {
    if (error?.message?.includes("succeeded through a wrong pin")) throw error;
    return error;
  }
}

/** The proxy's JSON-RPC error object, as web3.js passes it on (`error.cause`, or the rejection itself in a batch). */
function checkProxyError(what, rpcError) {
  check(rpcError?.code === CODE_UNTRUSTED_GATEWAY, `${what}: code ${rpcError?.code} is ${CODE_UNTRUSTED_GATEWAY}`);
  check(PIN_MISMATCH_MESSAGE.test(rpcError?.message ?? ""), `${what}: message names the pin mismatch: ${rpcError?.message}`);
  check(rpcError?.data?.kind === "pin-mismatch", `${what}: data.kind ${rpcError?.data?.kind} is pin-mismatch`);
  check(rpcError?.data?.forwarded === false, `${what}: data.forwarded is false`);
}

/** The error web3.js throws for a JSON-RPC error answer to a single call. */
function checkWeb3Error(what, error) {
  log(`${what} -> ${error.name} (web3.js code ${error.code}): ${error.message}`);
  log(`${what}    cause: ${JSON.stringify(error.cause)}`);
  check(error.name === "InvalidResponseError", `${what}: ${error.name} is InvalidResponseError`);
  check(error.code === 101, `${what}: web3.js code ${error.code} is 101 (ERR_INVALID_RESPONSE)`);
  check(
    error.message === `Returned error: ${error.cause?.message}`,
    `${what}: the message is "Returned error: " and the proxy's message`,
  );
  checkProxyError(`${what} (cause)`, error.cause);
}

async function wrongPin(url) {
  log(`wrong-pin proxy ${url}`);
  const { web3, batches, calls } = connect(url);

  checkWeb3Error("eth_blockNumber", await mustFail("eth_blockNumber", () => web3.eth.getBlockNumber()));

  // Signed offline (web3-eth-accounts, no node involved), as a wallet's first transaction: it
  // must not reach the node. (web3.eth.accounts.signTransaction would ask the node for fields,
  // net_version among them, even with every transaction field given.)
  const { Common, Transaction, signTransaction } = eth.accounts;
  const offline = Transaction.fromTxData(
    { nonce: 0n, gasPrice: 2_000_000_000n, gasLimit: 21_000n, to: RECIPIENT, value: VALUE_WEI },
    { common: Common.custom({ chainId: CHAIN_ID, networkId: CHAIN_ID }) },
  );
  const signed = await signTransaction(offline, utils.hexToBytes(FUNDED_KEY));
  // As a wallet sends it: web3.js first simulates the transaction with eth_call
  // (checkRevertBeforeSending) and reports that call's error as a revert, "Transaction has been
  // reverted by the EVM", with the proxy's message as `reason` and its code and data dropped.
  const sent = await mustFail("sendSignedTransaction", () => web3.eth.sendSignedTransaction(signed.rawTransaction));
  log(`sendSignedTransaction -> ${sent.name} (web3.js code ${sent.code}): ${sent.message}; reason: ${sent.reason}`);
  check(sent.name === "TransactionRevertInstructionError", `sendSignedTransaction: ${sent.name} is TransactionRevertInstructionError`);
  check(sent.code === 402, `sendSignedTransaction: web3.js code ${sent.code} is 402 (ERR_TX_REVERT_TRANSACTION)`);
  check(sent.message === "Transaction has been reverted by the EVM", `sendSignedTransaction: message ${sent.message}`);
  check(PIN_MISMATCH_MESSAGE.test(sent.reason ?? ""), `sendSignedTransaction: reason is the proxy's message: ${sent.reason}`);
  check(sent.receipt === undefined, "sendSignedTransaction: no receipt");
  check(
    calls.includes("eth_call") && !calls.includes("eth_sendRawTransaction"),
    `sendSignedTransaction stopped at its eth_call, before eth_sendRawTransaction: ${JSON.stringify(calls)}`,
  );

  // The signed bytes themselves, as eth_sendRawTransaction through web3.js's request manager.
  checkWeb3Error(
    "eth_sendRawTransaction",
    await mustFail("eth_sendRawTransaction", () =>
      web3.requestManager.send({ method: "eth_sendRawTransaction", params: [signed.rawTransaction] }),
    ),
  );

  const batch = new web3.BatchRequest();
  const single = [
    batch.add({ method: "eth_blockNumber", params: [] }),
    batch.add({ method: "eth_getBalance", params: [FUNDED_ADDRESS, "latest"] }),
  ];
  const settled = Promise.allSettled(single);
  const answers = await batch.execute({ timeout: 15_000 });
  log(`batch -> ${JSON.stringify(answers)}`);
  check(Array.isArray(answers) && answers.length === 2, "the batch answers two entries");
  for (const answer of answers) {
    check(answer.result === undefined, "no result in the batch");
    checkProxyError(`batch entry ${answer.id}`, answer.error);
  }
  for (const [index, outcome] of (await settled).entries()) {
    check(outcome.status === "rejected", `batch request ${index} rejected`);
    checkProxyError(`batch request ${index} rejection`, outcome.reason);
  }
  check(JSON.stringify(batches) === JSON.stringify([["eth_blockNumber", "eth_getBalance"]]), `one batch sent: ${JSON.stringify(batches)}`);
}

async function transfer(url) {
  log(`proxy ${url}`);
  const { web3, batches } = connect(url);

  const chainId = await web3.eth.getChainId();
  log(`chain id ${chainId}`);
  check(chainId === BigInt(CHAIN_ID), `chain id ${chainId} is ${CHAIN_ID}`);

  const startBlock = await web3.eth.getBlockNumber();
  log(`block number ${startBlock}`);

  const account = web3.eth.accounts.privateKeyToAccount(FUNDED_KEY);
  check(account.address === FUNDED_ADDRESS, `key belongs to ${FUNDED_ADDRESS}`);
  const funded = await web3.eth.getBalance(account.address);
  log(`balance of ${account.address}: ${web3.utils.fromWei(funded, "ether")} ETH`);
  check(funded > VALUE_WEI, "the funded account can pay");

  // EIP-1559 fees from the node (latest block's base fee, eth_maxPriorityFeePerGas): the account
  // bound to this Web3 fills nonce, chain id and gas from the node but not fees (web3.js 4's
  // signTransaction leaves them to the caller and throws MissingGasError without them). It signs
  // here; the signed bytes go out as eth_sendRawTransaction and web3.js polls for the receipt.
  const { maxFeePerGas, maxPriorityFeePerGas } = await web3.eth.calculateFeeData();
  check(maxFeePerGas > 0n && maxPriorityFeePerGas > 0n, "fees from the node");
  const signed = await account.signTransaction({
    from: account.address,
    to: RECIPIENT,
    value: VALUE_WEI,
    maxFeePerGas,
    maxPriorityFeePerGas,
  });
  const receipt = await web3.eth.sendSignedTransaction(signed.rawTransaction);
  log(
    `signed locally (${web3.utils.fromWei(VALUE_WEI, "ether")} ETH to ${RECIPIENT}), eth_sendRawTransaction -> ${signed.transactionHash}`,
  );
  log(`receipt: status ${receipt.status}, block ${receipt.blockNumber}, gas used ${receipt.gasUsed}`);
  check(receipt.status === 1n, `receipt status ${receipt.status} is 1`);
  check(receipt.transactionHash === signed.transactionHash, "the receipt is for our transaction");
  check(receipt.from.toLowerCase() === FUNDED_ADDRESS.toLowerCase(), "sent from the funded account");

  // Balances just before and at the receipt's block: exact whatever else the chain did.
  const before = receipt.blockNumber - 1n;
  const [recipientBefore, recipientAfter, senderBefore, senderAfter] = await Promise.all([
    web3.eth.getBalance(RECIPIENT, before),
    web3.eth.getBalance(RECIPIENT, receipt.blockNumber),
    web3.eth.getBalance(FUNDED_ADDRESS, before),
    web3.eth.getBalance(FUNDED_ADDRESS, receipt.blockNumber),
  ]);
  log(
    `recipient ${RECIPIENT}: ${web3.utils.fromWei(recipientBefore, "ether")} -> ${web3.utils.fromWei(recipientAfter, "ether")} ETH`,
  );
  check(recipientAfter - recipientBefore === VALUE_WEI, "the recipient received the value");
  const fee = receipt.gasUsed * receipt.effectiveGasPrice;
  check(senderBefore - senderAfter === VALUE_WEI + fee, "the sender paid value + fee");

  const endBlock = await web3.eth.getBlockNumber();
  log(`block number now ${endBlock}`);
  check(endBlock > startBlock, "a block was mined");

  // A BatchRequest: one POST with a JSON-RPC array; every answer must match the single calls.
  const batch = new web3.BatchRequest();
  const single = [
    batch.add({ method: "eth_chainId", params: [] }),
    batch.add({ method: "eth_getBalance", params: [RECIPIENT, web3.utils.toHex(receipt.blockNumber)] }),
    batch.add({ method: "eth_getTransactionReceipt", params: [signed.transactionHash] }),
    batch.add({ method: "eth_getBlockByNumber", params: [web3.utils.toHex(receipt.blockNumber), false] }),
  ];
  const answers = await batch.execute({ timeout: 15_000 });
  const [chainIdHex, balanceHex, rawReceipt, rawBlock] = await Promise.all(single);
  log(`batch of ${answers.length}: ids ${answers.map((a) => a.id).join(", ")}, batches sent ${JSON.stringify(batches)}`);
  check(answers.length === 4 && answers.every((a) => a.error === undefined), "the batch answers four results");
  check(BigInt(chainIdHex) === BigInt(CHAIN_ID), `batch chain id ${chainIdHex}`);
  check(BigInt(balanceHex) === recipientAfter, `batch balance ${balanceHex} is the recipient's at the receipt's block`);
  check(rawReceipt?.transactionHash === signed.transactionHash && rawReceipt?.status === "0x1", "batch receipt");
  check(rawBlock?.hash === receipt.blockHash && rawBlock.transactions.includes(signed.transactionHash), "batch block holds the transaction");
  check(
    JSON.stringify(batches) ===
      JSON.stringify([["eth_chainId", "eth_getBalance", "eth_getTransactionReceipt", "eth_getBlockByNumber"]]),
    `exactly one batch was sent: ${JSON.stringify(batches)}`,
  );
}

if (process.argv[2] === "--wrong-pin") {
  const url = loopbackUrl(process.argv[3] ?? process.env.SHROUD_WRONG_PIN_PROXY_URL ?? "");
  run("web3.js (wrong pin)", () => wrongPin(url));
} else {
  run("web3.js", () => transfer(proxyUrl()));
}
