//! What the chain follower reads from upstreams: blocks (number, hash, parent, the header
//! clients get) and their logs, parsed from the upstream's JSON once and shared by every
//! subscriber.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

/// A 20-byte address.
pub(crate) type Address = [u8; 20];
/// A 32-byte hash or topic.
pub(crate) type Hash = [u8; 32];

/// Members of a block object that are not in a `newHeads` header (geth's header has none of
/// them): the transaction list would make every notification as large as the block.
const NOT_IN_HEADERS: [&str; 5] = [
    "transactions",
    "uncles",
    "size",
    "totalDifficulty",
    "withdrawals",
];

/// One block as the follower knows it.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    /// Its height.
    pub(crate) number: u64,
    /// Its hash.
    pub(crate) hash: Hash,
    /// Its parent's hash.
    pub(crate) parent: Hash,
    /// The `newHeads` notification's result: the block object without its bodies.
    pub(crate) header: Bytes,
    /// Its logs, once fetched (only while someone subscribes to logs).
    pub(crate) logs: Option<std::sync::Arc<[Log]>>,
}

/// One log of a block.
#[derive(Debug, Clone)]
pub(crate) struct Log {
    /// The emitting contract.
    pub(crate) address: Address,
    /// Its topics, in order.
    pub(crate) topics: Vec<Hash>,
    /// The log object as the upstream gave it (`"removed": false`), delivered as is.
    pub(crate) json: Bytes,
}

impl Log {
    /// The same log with `"removed": true`, for a block that left the canonical chain.
    pub(crate) fn removed_json(&self) -> Bytes {
        match serde_json::from_slice::<Value>(&self.json) {
            Ok(Value::Object(mut object)) => {
                object.insert("removed".to_owned(), Value::Bool(true));
                Bytes::from(Value::Object(object).to_string())
            }
            // Parsed once already when the log was read, so this does not happen.
            _ => self.json.clone(),
        }
    }
}

/// Why an upstream's block or log could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Malformed {
    /// `null` where a block was asked for: the upstream does not know it.
    #[error("the upstream does not know the block")]
    UnknownBlock,
    /// A block object without a readable number, hash or parent hash.
    #[error("a block without a readable number, hash or parentHash")]
    Block,
    /// A log without a readable address or topics, or of another block.
    #[error("a log without a readable address or topics, or of another block")]
    Log,
    /// Not the JSON shape asked for.
    #[error("an answer of the wrong shape")]
    Shape,
}

/// A block from an `eth_getBlockBy*` result (hashes only, not full transactions).
pub(crate) fn block(result: Value) -> Result<Block, Malformed> {
    let Value::Object(mut object) = result else {
        return Err(if result.is_null() {
            Malformed::UnknownBlock
        } else {
            Malformed::Shape
        });
    };
    let field = |name: &str| object.get(name).and_then(Value::as_str);
    let number = field("number")
        .and_then(parse_quantity)
        .ok_or(Malformed::Block)?;
    let hash = field("hash")
        .and_then(parse_hex::<32>)
        .ok_or(Malformed::Block)?;
    let parent = field("parentHash")
        .and_then(parse_hex::<32>)
        .ok_or(Malformed::Block)?;
    for member in NOT_IN_HEADERS {
        object.remove(member);
    }
    Ok(Block {
        number,
        hash,
        parent,
        header: Bytes::from(Value::Object(object).to_string()),
        logs: None,
    })
}

/// The logs of block `hash` from an `eth_getLogs({"blockHash": hash})` result.
pub(crate) fn logs(
    result: &serde_json::value::RawValue,
    hash: &Hash,
) -> Result<Vec<Log>, Malformed> {
    #[derive(Deserialize)]
    struct Fields {
        address: String,
        topics: Vec<String>,
        #[serde(rename = "blockHash")]
        block_hash: Option<String>,
    }
    let raw: Vec<&serde_json::value::RawValue> =
        serde_json::from_str(result.get()).map_err(|_| Malformed::Shape)?;
    raw.into_iter()
        .map(|log| {
            let fields: Fields = serde_json::from_str(log.get()).map_err(|_| Malformed::Log)?;
            let address = parse_hex::<20>(&fields.address).ok_or(Malformed::Log)?;
            let topics = fields
                .topics
                .iter()
                .map(|t| parse_hex::<32>(t))
                .collect::<Option<Vec<_>>>()
                .ok_or(Malformed::Log)?;
            // A log of another block would be delivered under the wrong head.
            if fields
                .block_hash
                .as_deref()
                .and_then(parse_hex::<32>)
                .is_some_and(|of| of != *hash)
            {
                return Err(Malformed::Log);
            }
            Ok(Log {
                address,
                topics,
                json: Bytes::copy_from_slice(log.get().as_bytes()),
            })
        })
        .collect()
}

/// `0x` and exactly `2 * N` hex digits, in either case.
pub(crate) fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}

/// A JSON-RPC quantity: `0x` and 1 to 16 hex digits.
pub(crate) fn parse_quantity(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// `0x` and the hash in lower-case hex.
pub(crate) fn hash_hex(hash: &Hash) -> String {
    format!("0x{}", hex::encode(hash))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn headers_lose_the_bodies() {
        let block = block(json!({
            "number": "0x10",
            "hash": format!("0x{}", "11".repeat(32)),
            "parentHash": format!("0x{}", "22".repeat(32)),
            "transactions": ["0xaa"],
            "uncles": [],
            "miner": "0x00",
        }))
        .unwrap();
        assert_eq!(
            (block.number, block.hash, block.parent),
            (16, [0x11; 32], [0x22; 32])
        );
        let header: Value = serde_json::from_slice(&block.header).unwrap();
        assert!(header.get("transactions").is_none() && header.get("uncles").is_none());
        assert_eq!(header["miner"], "0x00");
    }

    #[test]
    fn bad_blocks() {
        assert_eq!(block(Value::Null).unwrap_err(), Malformed::UnknownBlock);
        assert_eq!(block(json!([1])).unwrap_err(), Malformed::Shape);
        assert_eq!(
            block(json!({"number": "0x1"})).unwrap_err(),
            Malformed::Block
        );
        assert_eq!(parse_quantity("0x"), None);
        assert_eq!(parse_quantity("0x10000000000000000"), None);
        assert_eq!(parse_quantity("0xff"), Some(255));
    }

    #[test]
    fn logs_of_the_block_only_and_removed() {
        let hash = [0x11; 32];
        let log = |block: u8| {
            json!({"address": format!("0x{}", "01".repeat(20)), "topics": [format!("0x{}", "02".repeat(32))],
                   "data": "0x", "blockHash": format!("0x{}", format!("{block:02x}").repeat(32)), "removed": false})
        };
        let raw = serde_json::value::to_raw_value(&json!([log(0x11)])).unwrap();
        let logs = logs(&raw, &hash).unwrap();
        assert_eq!((logs[0].address, logs[0].topics.len()), ([1; 20], 1));
        let removed: Value = serde_json::from_slice(&logs[0].removed_json()).unwrap();
        assert_eq!(removed["removed"], true);
        assert_eq!(removed["data"], "0x");
        let other = serde_json::value::to_raw_value(&json!([log(0x12)])).unwrap();
        assert_eq!(super::logs(&other, &hash).unwrap_err(), Malformed::Log);
    }
}
