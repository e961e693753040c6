// ethers 6 subscriptions through `shroud proxy`'s WebSocket (a `WebSocketProvider` on
// ws://127.0.0.1:PORT/eth: every call and eth_subscribe over it): `on("block")` sees three
// blocks mined at once (evm_mine) in order, linked by parentHash; `contract.on("Ping")` on a
// contract deployed here delivers its log with the right address, topics, data, block and
// transaction; `off` ends both subscriptions at the gateway (its shroud_subscriptions_active
// gauge goes down) and nothing more arrives while a second provider keeps seeing new blocks.
// Exits non-zero on any failure.
//
//     SHROUD_PROXY_URL=http://127.0.0.1:PORT SHROUD_METRICS_URL=http://127.0.0.1:MPORT node ethers-ws.mjs
//
// (run.mjs sets both.)

import { Contract, Wallet, WebSocketProvider, getAddress, id } from "ethers";

import {
  CHAIN_ID,
  FUNDED_KEY,
  PING_DATA,
  PING_EVENT,
  PING_SIGNATURE,
  PING_VALUE,
  QUIET_MS,
  activeSubscriptions,
  check,
  pingContractBytecode,
  proxyWsUrl,
  run,
  waitUntil,
} from "./common.mjs";

const log = (line) => console.log(`ethers-ws: ${line}`);

run("ethers-ws", async () => {
  const url = proxyWsUrl();
  log(`url ${url}`);
  // A static network: the chain id is read and checked below, not re-detected. No result cache:
  // ethers would otherwise answer the second transaction's nonce query (within 250 ms of the
  // first) with the first one's nonce.
  const options = { staticNetwork: true, cacheTimeout: -1 };
  const provider = new WebSocketProvider(url, CHAIN_ID, options);
  // Another connection for the control subscription: ethers shares one subscription between
  // the listeners of one event on one provider.
  const control = new WebSocketProvider(url, CHAIN_ID, options);
  try {
    const chainId = BigInt(await provider.send("eth_chainId", []));
    log(`chain id ${chainId} (over the WebSocket)`);
    check(chainId === BigInt(CHAIN_ID), `chain id ${chainId} is ${CHAIN_ID}`);

    const mine = () => provider.send("evm_mine", []);
    const receipt = async (hash) => {
      // Polled rather than tx.wait(), which listens for blocks with a subscription of its own.
      let found = null;
      await waitUntil(`the receipt of ${hash}`, async () => {
        found = await provider.getTransactionReceipt(hash);
        return found !== null;
      });
      check(found.status === 1, `transaction ${hash} succeeded`);
      return found;
    };
    const wallet = new Wallet(FUNDED_KEY, provider);

    const base = await activeSubscriptions();
    log(`gateway subscriptions before: ${JSON.stringify(base)}`);

    // ---- on("block") ----
    const seen = [];
    const controlSeen = [];
    const onBlock = (number) => seen.push(number);
    await provider.on("block", onBlock);
    await control.on("block", (number) => controlSeen.push(number));
    await waitUntil("both newHeads subscriptions at the gateway", async () => {
      const now = await activeSubscriptions();
      return now.newHeads === base.newHeads + 2;
    });
    // The gateway's follower starts with the first subscription: mine until a head comes
    // through, then count from the chain's head.
    await waitUntil(
      "a first head",
      async () => {
        if (seen.length > 0 && controlSeen.length > 0) return true;
        await mine();
        await new Promise((resolve) => setTimeout(resolve, 400));
        return seen.length > 0 && controlSeen.length > 0;
      },
      20_000,
    );
    let head = await provider.getBlockNumber();
    await waitUntil("both listeners at the head", () => seen.at(-1) === head && controlSeen.at(-1) === head);
    seen.length = 0;
    const start = head;
    // All three at once: the gateway's follower catches up on blocks it did not see one by one.
    for (let i = 0; i < 3; i++) await mine();
    await waitUntil("three blocks", () => seen.length >= 3);
    log(`on("block"): ${seen.join(", ")}`);
    check(
      JSON.stringify(seen) === JSON.stringify([start + 1, start + 2, start + 3]),
      `blocks ${start + 1}..${start + 3} in order, got ${seen.join(", ")}`,
    );
    const blocks = await Promise.all(seen.map((number) => provider.getBlock(number)));
    blocks.forEach((block, i) => {
      if (i > 0) check(block.parentHash === blocks[i - 1].hash, `block ${block.number} follows ${blocks[i - 1].number}`);
    });

    // ---- a contract event ----
    const topic = id(PING_SIGNATURE);
    const deployTx = await wallet.sendTransaction({ data: pingContractBytecode(topic) });
    const deployed = await receipt(deployTx.hash);
    const address = getAddress(deployed.contractAddress);
    log(`Ping contract at ${address} (tx ${deployTx.hash})`);

    const contract = new Contract(address, [PING_EVENT], provider);
    const pings = [];
    const onPing = (value, payload) => pings.push({ value, log: payload.log });
    await contract.on("Ping", onPing);
    await waitUntil("the logs subscription at the gateway", async () => {
      const now = await activeSubscriptions();
      return now.logs === base.logs + 1;
    });
    const pingTx = await wallet.sendTransaction({ to: address, data: PING_DATA });
    const pinged = await receipt(pingTx.hash);
    await waitUntil("the Ping log", () => pings.length > 0);
    const { value, log: ping } = pings[0];
    log(
      `contract.on("Ping"): Ping(${value}) at ${ping.address}, block ${ping.blockNumber}, tx ${ping.transactionHash}, topics ${JSON.stringify(ping.topics)}`,
    );
    check(pings.length === 1, `one log, got ${pings.length}`);
    check(value === PING_VALUE, `decoded Ping(${PING_VALUE})`);
    check(getAddress(ping.address) === address, "the log's address is the contract");
    check(ping.topics.length === 1 && ping.topics[0] === topic, "topics [keccak256(Ping(uint256))]");
    check(ping.data === PING_DATA, "data is the 32-byte value");
    check(ping.blockNumber === pinged.blockNumber, `block number ${pinged.blockNumber}`);
    check(ping.blockHash === pinged.blockHash, "block hash of the receipt");
    check(ping.transactionHash === pingTx.hash, "transaction hash of the ping");
    check(ping.removed === false, "not removed");

    // ---- off: eth_unsubscribe stops delivery ----
    // The Ping's block may still be on its way to the block listener (the gateway sends the log
    // and the head as two notifications): let it land first, so that what is counted below is
    // only what arrives after `off`.
    await waitUntil("both block listeners at the Ping's block", () =>
      seen.at(-1) >= pinged.blockNumber && controlSeen.at(-1) >= pinged.blockNumber,
    );
    await provider.off("block", onBlock);
    await contract.off("Ping", onPing);
    await waitUntil("the gateway to drop both subscriptions", async () => {
      const now = await activeSubscriptions();
      return now.newHeads === base.newHeads + 1 && now.logs === base.logs;
    });
    log("off: the gateway holds only the control subscription");
    const [blocksBefore, pingsBefore] = [seen.length, pings.length];
    head = await provider.getBlockNumber();
    await mine();
    await receipt((await wallet.sendTransaction({ to: address, data: PING_DATA })).hash);
    await mine();
    await waitUntil("the control provider to see the new blocks", () => controlSeen.at(-1) >= head + 3);
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    check(seen.length === blocksBefore, `no block after off, got ${seen.length - blocksBefore}`);
    check(pings.length === pingsBefore, `no log after off, got ${pings.length - pingsBefore}`);
    log(`after off: 3 blocks and a Ping mined, the control provider saw up to ${controlSeen.at(-1)}, the removed listeners nothing`);
  } finally {
    await provider.destroy();
    await control.destroy();
  }
});
