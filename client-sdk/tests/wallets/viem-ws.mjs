// viem 2 subscriptions through `shroud proxy`'s WebSocket (ws://127.0.0.1:PORT/eth, a `webSocket`
// transport: every call and eth_subscribe over it): `watchBlocks` sees three mined blocks
// (evm_mine) in order, linked by parentHash; `watchContractEvent` on a contract deployed here
// delivers its Ping log with the right address, topics, data, block and transaction; unwatching
// ends both subscriptions at the gateway (its shroud_subscriptions_active gauge goes down) and
// nothing more arrives while a second watcher keeps seeing new blocks. Exits non-zero on any
// failure.
//
//     SHROUD_PROXY_URL=http://127.0.0.1:PORT SHROUD_METRICS_URL=http://127.0.0.1:MPORT node viem-ws.mjs
//
// (run.mjs sets both.) viem 2.21's watchBlocks fetches the latest block for every newHeads
// notification rather than the notified one, so blocks are mined one at a time here, each once
// the previous one was seen.

import {
  createPublicClient,
  createWalletClient,
  defineChain,
  getAddress,
  parseAbi,
  toEventSelector,
  webSocket,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

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

const log = (line) => console.log(`viem-ws: ${line}`);

run("viem-ws", async () => {
  const url = proxyWsUrl();
  log(`url ${url}`);
  const chain = defineChain({
    id: CHAIN_ID,
    name: "ganache via shroud proxy",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [], webSocket: [url] } },
  });
  // No silent reconnects: a dropped connection must fail the test, not hide a gap.
  const transport = webSocket(url, { reconnect: false, retryCount: 0, timeout: 15_000 });
  const client = createPublicClient({ chain, transport });
  // A second client on the same socket, so that its watcher is a subscription of its own (viem
  // shares one subscription between identical watchers of one client).
  const control = createPublicClient({ chain, transport });
  const account = privateKeyToAccount(FUNDED_KEY);
  const wallet = createWalletClient({ account, chain, transport });

  const chainId = await client.getChainId();
  log(`chain id ${chainId} (over the WebSocket)`);
  check(chainId === CHAIN_ID, `chain id ${chainId} is ${CHAIN_ID}`);

  const mine = () => client.request({ method: "evm_mine", params: [] });
  const receipt = async (hash) => {
    // Polled rather than waitForTransactionReceipt, which would open a subscription of its own
    // and disturb the gateway's subscription count this test reads.
    let found = null;
    await waitUntil(`the receipt of ${hash}`, async () => {
      found = await client.getTransactionReceipt({ hash }).catch(() => null);
      return found !== null;
    });
    check(found.status === "success", `transaction ${hash} succeeded`);
    return found;
  };

  const base = await activeSubscriptions();
  log(`gateway subscriptions before: ${JSON.stringify(base)}`);

  // ---- watchBlocks ----
  const seen = [];
  const controlSeen = [];
  const errors = [];
  const unwatchBlocks = client.watchBlocks({ onBlock: (block) => seen.push(block), onError: (e) => errors.push(e) });
  const unwatchControl = control.watchBlocks({
    onBlock: (block) => controlSeen.push(block),
    onError: (e) => errors.push(e),
  });
  await waitUntil("both newHeads subscriptions at the gateway", async () => {
    const now = await activeSubscriptions();
    return now.newHeads === base.newHeads + 2;
  });
  // The gateway's follower starts with the first subscription: mine until a head comes through,
  // then count from the chain's head.
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
  let head = await client.getBlockNumber({ cacheTime: 0 });
  await waitUntil("both watchers at the head", () =>
    seen.at(-1)?.number === head && controlSeen.at(-1)?.number === head,
  );
  seen.length = 0;
  const start = head;
  for (let i = 1n; i <= 3n; i++) {
    await mine();
    await waitUntil(`block ${start + i}`, () => seen.length >= Number(i));
  }
  log(`watchBlocks: ${seen.map((b) => `${b.number} ${b.hash.slice(0, 10)}`).join(", ")}`);
  check(seen.length === 3, `three blocks, got ${seen.length}`);
  seen.forEach((block, i) => {
    check(block.number === start + BigInt(i) + 1n, `block ${i} is number ${start + BigInt(i) + 1n}, got ${block.number}`);
    if (i > 0) check(block.parentHash === seen[i - 1].hash, `block ${block.number} follows ${seen[i - 1].number}`);
  });

  // ---- a contract event ----
  const topic = toEventSelector(PING_SIGNATURE);
  const deployHash = await wallet.sendTransaction({ data: pingContractBytecode(topic) });
  const deployed = await receipt(deployHash);
  const address = getAddress(deployed.contractAddress);
  log(`Ping contract at ${address} (tx ${deployHash})`);

  const pings = [];
  const unwatchPings = client.watchContractEvent({
    address,
    abi: parseAbi([PING_EVENT]),
    eventName: "Ping",
    onLogs: (logs) => pings.push(...logs),
    onError: (e) => errors.push(e),
  });
  await waitUntil("the logs subscription at the gateway", async () => {
    const now = await activeSubscriptions();
    return now.logs === base.logs + 1;
  });
  const pingHash = await wallet.sendTransaction({ to: address, data: PING_DATA });
  const pinged = await receipt(pingHash);
  await waitUntil("the Ping log", () => pings.length > 0);
  const ping = pings[0];
  log(
    `watchContractEvent: ${ping.eventName}(${ping.args.value}) at ${ping.address}, block ${ping.blockNumber}, tx ${ping.transactionHash}, topics ${JSON.stringify(ping.topics)}`,
  );
  check(pings.length === 1, `one log, got ${pings.length}`);
  check(getAddress(ping.address) === address, "the log's address is the contract");
  check(ping.eventName === "Ping" && ping.args.value === PING_VALUE, `decoded Ping(${PING_VALUE})`);
  check(ping.topics.length === 1 && ping.topics[0] === topic, "topics [keccak256(Ping(uint256))]");
  check(ping.data === PING_DATA, "data is the 32-byte value");
  check(ping.blockNumber === pinged.blockNumber, `block number ${pinged.blockNumber}`);
  check(ping.blockHash === pinged.blockHash, "block hash of the receipt");
  check(ping.transactionHash === pingHash, "transaction hash of the ping");
  check(ping.removed === false, "not removed");

  // ---- unwatch: eth_unsubscribe stops delivery ----
  // The Ping's block may still be on its way to the block watcher (the gateway sends the log and
  // the head as two notifications, and viem fetches a block for each head): let it land first,
  // so that what is counted below is only what arrives after the unwatch.
  await waitUntil("both block watchers at the Ping's block", () =>
    seen.at(-1)?.number >= pinged.blockNumber && controlSeen.at(-1)?.number >= pinged.blockNumber,
  );
  unwatchBlocks();
  unwatchPings();
  await waitUntil("the gateway to drop both subscriptions", async () => {
    const now = await activeSubscriptions();
    return now.newHeads === base.newHeads + 1 && now.logs === base.logs;
  });
  log("unwatched: the gateway holds only the control subscription");
  const [blocksBefore, pingsBefore] = [seen.length, pings.length];
  head = await client.getBlockNumber({ cacheTime: 0 });
  await mine();
  await receipt(await wallet.sendTransaction({ to: address, data: PING_DATA }));
  await mine();
  await waitUntil("the control watcher to see the new blocks", () => controlSeen.at(-1)?.number >= head + 3n);
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  check(seen.length === blocksBefore, `no block after unwatch, got ${seen.length - blocksBefore}`);
  check(pings.length === pingsBefore, `no log after unwatch, got ${pings.length - pingsBefore}`);
  log(`after unwatch: 3 blocks and a Ping mined, the control watcher saw up to ${controlSeen.at(-1).number}, the unwatched ones nothing`);

  unwatchControl();
  check(errors.length === 0, `no watcher errors: ${errors.map((e) => e.message).join("; ")}`);
  await (await transport({ chain }).value.getRpcClient()).close();
});
