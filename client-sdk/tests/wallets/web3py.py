"""web3.py through `shroud proxy`: chain id, block number, a balance, and a value transfer signed
locally with eth-account (an EIP-1559 transaction, nonce, gas and fees read from the node) and sent
as eth_sendRawTransaction; checks the receipt and the balances, then a `w3.batch_requests()` batch
(one HTTP request holding a JSON-RPC array) whose answers must agree with the single calls. Exits
non-zero on any failure.

    python3 web3py.py [PROXY_URL]            (or env SHROUD_PROXY_URL; run.mjs sets it)
    python3 web3py.py --wrong-pin PROXY_URL  a proxy started with a wrong --pin: a read, a
                                             transaction signed offline and a batch must each fail
                                             with the proxy's error as web3.py raises it

In --wrong-pin mode no call is eth_chainId: run.mjs counts every other method ganache handles
(eth_chainId is the gateway's health probe), so any forwarded call would show.

Needs the pinned packages: python3 -m pip install -r client-sdk/tests/wallets/requirements.txt
"""

import os
import re
import sys
import traceback
from urllib.parse import urlsplit

from eth_account import Account
from web3 import Web3
from web3.exceptions import Web3RPCError

# The dev chain's facts, as in common.mjs (keep them in step): ganache's chain id, account 0 of its
# deterministic wallet (1000 ETH) and what each script sends, 0.25 ETH.
CHAIN_ID = 1337
FUNDED_KEY = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
FUNDED_ADDRESS = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
VALUE_WEI = 250_000_000_000_000_000

# Account 4 of ganache's deterministic wallet: the recipient here (ethers 1, viem 2, web3.js 3).
RECIPIENT = "0xd03ea8624C8C5987235048901fB614fDcA89b117"

# What `shroud proxy` answers when the gateway fails its pins (common.mjs, client-sdk/src/proxy.rs).
CODE_UNTRUSTED_GATEWAY = -32001
PIN_MISMATCH_MESSAGE = re.compile(
    r"^shroud proxy: gateway not trusted, nothing was sent: pin mismatch: measurement mismatch"
)


def log(line):
    print(f"web3.py: {line}", flush=True)


def check(condition, message):
    if not condition:
        raise AssertionError(f"assertion failed: {message}")


def loopback_url(text):
    """`text`, refused unless it names a loopback host: these scripts talk to a local proxy only."""
    host = urlsplit(text).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing non-loopback proxy URL {text!r}")
    return text


def connect(url):
    """A Web3 on `url` whose provider records the batches (JSON-RPC arrays) it sends."""
    provider = Web3.HTTPProvider(url, request_kwargs={"timeout": 15})
    batches = []
    make_batch_request = provider.make_batch_request

    def recording(requests):
        batches.append([method for method, _params in requests])
        return make_batch_request(requests)

    provider.make_batch_request = recording
    return Web3(provider), batches


def ether(wei):
    return Web3.from_wei(wei, "ether")


def transfer(url):
    log(f"proxy {url}")
    w3, batches = connect(url)

    chain_id = w3.eth.chain_id
    log(f"chain id {chain_id}")
    check(chain_id == CHAIN_ID, f"chain id {chain_id} is {CHAIN_ID}")

    start_block = w3.eth.block_number
    log(f"block number {start_block}")

    account = Account.from_key(FUNDED_KEY)
    check(account.address == FUNDED_ADDRESS, f"key belongs to {FUNDED_ADDRESS}")
    funded = w3.eth.get_balance(account.address)
    log(f"balance of {account.address}: {ether(funded)} ETH")
    check(funded > VALUE_WEI, "the funded account can pay")

    # An EIP-1559 transaction built from the node's answers (nonce, base fee, priority fee, gas),
    # signed here by eth-account; only the signed bytes go out, as eth_sendRawTransaction.
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
    priority_fee = w3.eth.max_priority_fee
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "to": RECIPIENT,
        "value": VALUE_WEI,
        "maxPriorityFeePerGas": priority_fee,
        "maxFeePerGas": 2 * base_fee + priority_fee,
    }
    tx["gas"] = w3.eth.estimate_gas({"from": account.address, "to": RECIPIENT, "value": VALUE_WEI})
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    log(
        f"signed locally (type 2, nonce {nonce}, gas {tx['gas']}, {ether(VALUE_WEI)} ETH to {RECIPIENT}), "
        f"eth_sendRawTransaction -> {tx_hash.to_0x_hex()}"
    )
    check(tx_hash == signed.hash, "the node's hash is the signed transaction's")

    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.25)
    log(f"receipt: status {receipt['status']}, block {receipt['blockNumber']}, gas used {receipt['gasUsed']}")
    check(receipt["status"] == 1, f"receipt status {receipt['status']} is 1")
    check(receipt["transactionHash"] == tx_hash, "the receipt is for our transaction")
    check(receipt["from"] == FUNDED_ADDRESS, "sent from the funded account")

    # Balances just before and at the receipt's block: exact whatever else the chain did.
    block = receipt["blockNumber"]
    recipient_before = w3.eth.get_balance(RECIPIENT, block - 1)
    recipient_after = w3.eth.get_balance(RECIPIENT, block)
    sender_before = w3.eth.get_balance(FUNDED_ADDRESS, block - 1)
    sender_after = w3.eth.get_balance(FUNDED_ADDRESS, block)
    log(f"recipient {RECIPIENT}: {ether(recipient_before)} -> {ether(recipient_after)} ETH")
    check(recipient_after - recipient_before == VALUE_WEI, "the recipient received the value")
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    check(sender_before - sender_after == VALUE_WEI + fee, "the sender paid value + fee")

    end_block = w3.eth.block_number
    log(f"block number now {end_block}")
    check(end_block > start_block, "a block was mined")

    # A batch: one POST with a JSON-RPC array; every answer must match the single calls.
    with w3.batch_requests() as batch:
        batch.add(w3.eth.get_block_number())
        batch.add(w3.eth.get_balance(RECIPIENT, block))
        batch.add(w3.eth.get_transaction_receipt(tx_hash))
        batch.add(w3.eth.get_block(block))
        answers = batch.execute()
    log(f"batch of {len(answers)}, batches sent {batches}")
    check(len(answers) == 4, "the batch answers four results")
    batch_block_number, batch_balance, batch_receipt, batch_block = answers
    check(batch_block_number >= block, f"batch block number {batch_block_number}")
    check(batch_balance == recipient_after, f"batch balance {batch_balance} is the recipient's at the receipt's block")
    check(batch_receipt["transactionHash"] == tx_hash and batch_receipt["status"] == 1, "batch receipt")
    check(batch_block["hash"] == receipt["blockHash"] and tx_hash in batch_block["transactions"], "batch block holds the transaction")
    check(
        batches == [["eth_blockNumber", "eth_getBalance", "eth_getTransactionReceipt", "eth_getBlockByNumber"]],
        f"exactly one batch was sent: {batches}",
    )


def check_proxy_error(what, error):
    """The Web3RPCError web3.py raises for the proxy's JSON-RPC error answer."""
    log(f"{what} -> {type(error).__name__}: {error}")
    check(isinstance(error, Web3RPCError), f"{what}: {type(error).__name__} is Web3RPCError")
    rpc_error = (error.rpc_response or {}).get("error") or {}
    check(rpc_error.get("code") == CODE_UNTRUSTED_GATEWAY, f"{what}: code {rpc_error.get('code')} is {CODE_UNTRUSTED_GATEWAY}")
    message = rpc_error.get("message", "")
    check(PIN_MISMATCH_MESSAGE.match(message), f"{what}: message names the pin mismatch: {message}")
    check(rpc_error.get("data") == {"kind": "pin-mismatch", "forwarded": False}, f"{what}: data {rpc_error.get('data')}")
    # What a user sees: str(error) is the error object, the proxy's message included.
    check(message in str(error) and str(CODE_UNTRUSTED_GATEWAY) in str(error), f"{what}: str(error) shows the code and message")


def must_fail(what, call):
    try:
        value = call()
    except Exception as error:  # noqa: BLE001 - the type is checked by the caller
        return error
    raise AssertionError(f"{what} succeeded through a wrong pin: {value!r}")


def wrong_pin(url):
    log(f"wrong-pin proxy {url}")
    w3, batches = connect(url)

    check_proxy_error("eth_blockNumber", must_fail("eth_blockNumber", lambda: w3.eth.block_number))

    # Signed offline (legacy, EIP-155), every field given, as a wallet's first transaction: it must
    # not reach the node.
    signed = Account.sign_transaction(
        {
            "chainId": CHAIN_ID,
            "nonce": 0,
            "to": RECIPIENT,
            "value": VALUE_WEI,
            "gas": 21_000,
            "gasPrice": 2_000_000_000,
        },
        FUNDED_KEY,
    )
    check_proxy_error(
        "eth_sendRawTransaction",
        must_fail("eth_sendRawTransaction", lambda: w3.eth.send_raw_transaction(signed.raw_transaction)),
    )

    def batch():
        with w3.batch_requests() as requests:
            requests.add(w3.eth.get_block_number())
            requests.add(w3.eth.get_balance(FUNDED_ADDRESS))
            return requests.execute()

    check_proxy_error("batch", must_fail("batch", batch))
    check(batches == [["eth_blockNumber", "eth_getBalance"]], f"one batch sent: {batches}")


def main():
    args = sys.argv[1:]
    if args[:1] == ["--wrong-pin"]:
        name = "web3.py (wrong pin)"
        body = lambda: wrong_pin(loopback_url(args[1] if len(args) > 1 else os.environ.get("SHROUD_WRONG_PIN_PROXY_URL", "")))  # noqa: E731
    else:
        name = "web3.py"
        body = lambda: transfer(loopback_url(args[0] if args else os.environ.get("SHROUD_PROXY_URL", "http://127.0.0.1:8545")))  # noqa: E731
    try:
        body()
    except Exception:  # noqa: BLE001 - any failure fails the script
        print(f"{name}: FAILED: {traceback.format_exc()}", file=sys.stderr, flush=True)
        return 1
    log("ok" if name == "web3.py" else "ok (wrong pin)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
