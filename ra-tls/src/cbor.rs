//! CBOR (RFC 8949) to and from [`ciborium::Value`] over ciborium's own low-level codec
//! (`ciborium-ll`: item heads, lengths, chunked strings, floats), without ciborium's serde layer:
//! that deserializer, its error paths and the float formatting they link were about 7 KB of the
//! gzipped browser bundle (docs/BENCHMARKS.md, "wasm bundle size"), for the few items of an
//! RA-TLS certificate (the CMW, the claims, the simulated report).
//!
//! What is left here is the tree: [`decode`] builds the same value that
//! `ciborium::de::from_reader_with_recursion_limit` builds (bignums of up to 16 bytes as
//! integers, `undefined` as [`Value::Null`]) and refuses what it refuses; [`encode`] writes what
//! `ciborium::into_writer` writes. The tests hold both to ciborium on random items.

use std::fmt;

use ciborium::value::{Integer, Value};
use ciborium_ll::{Decoder, Encoder, Header};

/// Why bytes are not one CBOR item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CborError {
    offset: usize,
    what: &'static str,
}

impl fmt::Display for CborError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

/// Decodes exactly one item of `bytes` (trailing bytes are an error), nesting arrays, maps and
/// tags at most `depth` deep.
pub(crate) fn decode(bytes: &[u8], depth: usize) -> Result<Value, CborError> {
    let mut reader = Decoder::from(bytes);
    let value = item(&mut reader, depth)?;
    let offset = reader.offset();
    if offset == bytes.len() {
        Ok(value)
    } else {
        Err(CborError {
            offset,
            what: "trailing bytes after the item",
        })
    }
}

/// Encodes `value` with the shortest heads and definite lengths (ciborium's encoding).
pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail; should it ever, the item would be cut short and every
    // reader refuses a truncated item.
    let _ = write(&mut Encoder::from(&mut out), value);
    out
}

const TAG_BIGPOS: u64 = 2;
const TAG_BIGNEG: u64 = 3;

type Reader<'a> = Decoder<&'a [u8]>;

fn error<E>(offset: usize, error: ciborium_ll::Error<E>) -> CborError {
    match error {
        ciborium_ll::Error::Io(_) => CborError {
            offset,
            what: "truncated item",
        },
        ciborium_ll::Error::Syntax(offset) => CborError {
            offset,
            what: "malformed item",
        },
    }
}

/// The next head, with the offset it starts at.
fn head(reader: &mut Reader<'_>) -> Result<(usize, Header), CborError> {
    let offset = reader.offset();
    let header = reader.pull().map_err(|e| error(offset, e))?;
    Ok((offset, header))
}

fn item(reader: &mut Reader<'_>, depth: usize) -> Result<Value, CborError> {
    let (offset, header) = head(reader)?;
    item_of(reader, offset, header, depth)
}

/// The item whose head, at `offset`, is `header`.
fn item_of(
    reader: &mut Reader<'_>,
    offset: usize,
    header: Header,
    depth: usize,
) -> Result<Value, CborError> {
    let fail = |what| CborError { offset, what };
    // A container's items and a tag's item are one level deeper.
    let inner = || depth.checked_sub(1).ok_or(fail("nested too deep"));
    match header {
        Header::Positive(n) => Ok(Value::Integer(n.into())),
        Header::Negative(n) => negative(n)
            .map(Value::Integer)
            .ok_or(fail("integer too large")),
        Header::Float(x) => Ok(Value::Float(x)),
        Header::Simple(20) => Ok(Value::Bool(false)),
        Header::Simple(21) => Ok(Value::Bool(true)),
        Header::Simple(22 | 23) => Ok(Value::Null),
        Header::Simple(_) => Err(fail("an unknown simple value")),
        Header::Break => Err(fail("a break outside an indefinite item")),
        Header::Bytes(length) => bytes(reader, offset, length).map(Value::Bytes),
        Header::Text(length) => text(reader, offset, length).map(Value::Text),
        Header::Array(length) => {
            let inner = inner()?;
            let mut items = Vec::new();
            while let Some((offset, header)) = next(reader, length, items.len())? {
                items.push(item_of(reader, offset, header, inner)?);
            }
            Ok(Value::Array(items))
        }
        Header::Map(length) => {
            let inner = inner()?;
            let mut entries = Vec::new();
            while let Some((offset, header)) = next(reader, length, entries.len())? {
                let key = item_of(reader, offset, header, inner)?;
                entries.push((key, item(reader, inner)?));
            }
            Ok(Value::Map(entries))
        }
        Header::Tag(tag) => tagged(reader, tag, inner()?),
    }
}

/// The head of a container's next item: `None` once `count` items of a definite `length` are
/// read, or at the break that ends an indefinite one. (No capacity is reserved from a length
/// the input claims: each item takes at least one byte of the input.)
fn next(
    reader: &mut Reader<'_>,
    length: Option<usize>,
    count: usize,
) -> Result<Option<(usize, Header)>, CborError> {
    match length {
        Some(length) if count >= length => Ok(None),
        Some(_) => head(reader).map(Some),
        None => match head(reader)? {
            (_, Header::Break) => Ok(None),
            item => Ok(Some(item)),
        },
    }
}

/// `-1 - n`, within CBOR's range.
fn negative(n: u64) -> Option<Integer> {
    Integer::try_from(-1 - i128::from(n)).ok()
}

/// A byte string, definite or in definite chunks.
fn bytes(
    reader: &mut Reader<'_>,
    offset: usize,
    length: Option<usize>,
) -> Result<Vec<u8>, CborError> {
    let mut out = Vec::new();
    let mut buffer = [0_u8; 4096];
    let mut segments = reader.bytes(length);
    while let Some(mut segment) = segments.pull().map_err(|e| error(offset, e))? {
        while let Some(chunk) = segment.pull(&mut buffer).map_err(|e| error(offset, e))? {
            out.extend_from_slice(chunk);
        }
    }
    Ok(out)
}

/// A text string, definite or in definite chunks, each valid UTF-8 on its own.
fn text(
    reader: &mut Reader<'_>,
    offset: usize,
    length: Option<usize>,
) -> Result<String, CborError> {
    let mut out = String::new();
    let mut buffer = [0_u8; 4096];
    let mut segments = reader.text(length);
    while let Some(mut segment) = segments.pull().map_err(|e| error(offset, e))? {
        while let Some(chunk) = segment.pull(&mut buffer).map_err(|e| error(offset, e))? {
            out.push_str(chunk);
        }
    }
    Ok(out)
}

/// A tag: a bignum (tags 2 and 3 over a definite byte string of at most 16 bytes) as an integer
/// where it fits, any other tag around its item (`depth` is the item's).
fn tagged(reader: &mut Reader<'_>, tag: u64, depth: usize) -> Result<Value, CborError> {
    let (offset, header) = head(reader)?;
    if let (TAG_BIGPOS | TAG_BIGNEG, Header::Bytes(Some(length @ 0..=16))) = (tag, header) {
        let raw = bytes(reader, offset, Some(length))?
            .into_iter()
            .fold(0_u128, |raw, byte| raw << 8 | u128::from(byte));
        return big(tag, raw).ok_or(CborError {
            offset,
            what: "integer too large",
        });
    }
    let item = item_of(reader, offset, header, depth)?;
    Ok(Value::Tag(tag, Box::new(item)))
}

/// The bignum `raw` of tag 2 (`raw`) or 3 (`-1 - raw`): an integer where one holds it, else the
/// tag around its bytes without leading zeros (ciborium's `Value::from(u128/i128)`).
fn big(tag: u64, raw: u128) -> Option<Value> {
    if let Ok(magnitude) = u64::try_from(raw) {
        return if tag == TAG_BIGPOS {
            Some(Value::Integer(magnitude.into()))
        } else {
            negative(magnitude).map(Value::Integer)
        };
    }
    if tag == TAG_BIGNEG && i128::try_from(raw).is_err() {
        return None;
    }
    let bytes = raw.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let magnitude = bytes.get(first..).unwrap_or_default().to_vec();
    Some(Value::Tag(tag, Box::new(Value::Bytes(magnitude))))
}

type Writer<'a> = Encoder<&'a mut Vec<u8>>;
type WriteError<'a> = <&'a mut Vec<u8> as ciborium_io::Write>::Error;

fn write<'a>(out: &mut Writer<'a>, value: &Value) -> Result<(), WriteError<'a>> {
    match value {
        Value::Integer(integer) => {
            let value = i128::from(*integer);
            let header = match u64::try_from(value) {
                Ok(n) => Header::Positive(n),
                // -1 - value of a negative CBOR integer fits a u64.
                Err(_) => Header::Negative(u64::try_from(-1 - value).unwrap_or_default()),
            };
            out.push(header)
        }
        Value::Bytes(bytes) => out.bytes(bytes, None),
        Value::Text(text) => out.text(text, None),
        Value::Array(items) => {
            out.push(Header::Array(Some(items.len())))?;
            items.iter().try_for_each(|item| write(out, item))
        }
        Value::Map(entries) => {
            out.push(Header::Map(Some(entries.len())))?;
            entries.iter().try_for_each(|(key, value)| {
                write(out, key)?;
                write(out, value)
            })
        }
        Value::Tag(tag, item) => {
            out.push(Header::Tag(*tag))?;
            write(out, item)
        }
        Value::Bool(b) => out.push(Header::Simple(if *b { 21 } else { 20 })),
        Value::Float(x) => out.push(Header::Float(*x)),
        // `Value` is non-exhaustive: null for anything else.
        _ => out.push(Header::Simple(22)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BREAK: u8 = 0xff;

    /// A head of `major` with `argument` in its shortest form (the generator's).
    fn write_head(out: &mut Vec<u8>, major: u8, argument: u64) {
        let major = major << 5;
        match argument {
            0..=23 => out.push(major | argument as u8),
            24..=0xff => out.extend_from_slice(&[major | 24, argument as u8]),
            0x100..=0xffff => {
                out.push(major | 25);
                out.extend_from_slice(&(argument as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(major | 26);
                out.extend_from_slice(&(argument as u32).to_be_bytes());
            }
            _ => {
                out.push(major | 27);
                out.extend_from_slice(&argument.to_be_bytes());
            }
        }
    }

    fn ciborium_decode(bytes: &[u8]) -> Result<Value, String> {
        let mut reader = bytes;
        let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut reader, 16)
            .map_err(|e| e.to_string())?;
        if reader.is_empty() {
            Ok(value)
        } else {
            Err("trailing bytes".into())
        }
    }

    /// Equal values, NaN included.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => {
                x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|((k, v), (l, w))| same(k, l) && same(v, w))
            }
            (Value::Tag(s, x), Value::Tag(t, y)) => s == t && same(x, y),
            _ => a == b,
        }
    }

    /// Decodes with both; the same value or both refusing. Returns whether it decoded.
    fn compare(bytes: &[u8]) -> bool {
        match (decode(bytes, 16), ciborium_decode(bytes)) {
            (Ok(ours), Ok(theirs)) => {
                assert!(
                    same(&ours, &theirs),
                    "{bytes:02x?}: {ours:?} vs ciborium {theirs:?}"
                );
                true
            }
            (Err(_), Err(_)) => false,
            (ours, theirs) => panic!("{bytes:02x?}: {ours:?} vs ciborium {theirs:?}"),
        }
    }

    struct Random(u64);

    impl Random {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn byte(&mut self) -> u8 {
            u8::try_from(self.below(256)).unwrap()
        }

        /// A head of `major` for `argument`, sometimes longer than it needs to be.
        fn head(&mut self, out: &mut Vec<u8>, major: u8, argument: u64) {
            let width = match self.below(6) {
                0 if argument <= 0xff => 24,
                1 if argument <= 0xffff => 25,
                2 if argument <= 0xffff_ffff => 26,
                3 => 27,
                _ => {
                    write_head(out, major, argument);
                    return;
                }
            };
            out.push(major << 5 | width);
            let bytes = argument.to_be_bytes();
            out.extend_from_slice(&bytes[8 - (1 << (width - 24))..]);
        }

        fn string(&mut self, out: &mut Vec<u8>, major: u8) {
            let pick = |r: &mut Random| -> Vec<u8> {
                match r.below(5) {
                    0 => "é€😀".as_bytes()[..usize::try_from(r.below(10)).unwrap()].to_vec(),
                    1 => (0..r.below(20)).map(|_| r.byte()).collect(),
                    _ => b"pubkey-hash".to_vec(),
                }
            };
            if self.below(4) == 0 {
                out.push(major << 5 | 31);
                for _ in 0..self.below(3) {
                    let chunk = pick(self);
                    let chunk_major = if self.below(10) == 0 {
                        5 - major
                    } else {
                        major
                    };
                    self.head(out, chunk_major, chunk.len() as u64);
                    out.extend_from_slice(&chunk);
                }
                out.push(BREAK);
            } else {
                let content = pick(self);
                self.head(out, major, content.len() as u64);
                out.extend_from_slice(&content);
            }
        }

        fn item(&mut self, out: &mut Vec<u8>, depth: u32) {
            match self.below(if depth > 4 { 6 } else { 10 }) {
                0 => {
                    let n = [0, 23, 24, 255, 256, 65_535, 1 << 32, u64::MAX]
                        [usize::try_from(self.below(8)).unwrap()];
                    let major = u8::try_from(self.below(2)).unwrap();
                    self.head(out, major, n);
                }
                1 => self.string(out, 2),
                2 => self.string(out, 3),
                3 => out.push(
                    0xe0 | [20, 21, 22, 23, 19, 24, 31, 28]
                        [usize::try_from(self.below(8)).unwrap()],
                ),
                4 => {
                    out.push(0xf8);
                    out.push([20, 21, 22, 23, 0, 32, 255][usize::try_from(self.below(7)).unwrap()]);
                }
                5 => {
                    let width = [2, 4, 8][usize::try_from(self.below(3)).unwrap()];
                    out.push(
                        0xf9 + [2, 4, 8]
                            .iter()
                            .position(|w| *w == width)
                            .map_or(0, |p| u8::try_from(p).unwrap()),
                    );
                    for _ in 0..width {
                        out.push(self.byte());
                    }
                }
                6 | 7 => {
                    let major = if self.below(2) == 0 { 4 } else { 5 };
                    let count = self.below(4);
                    let indefinite = self.below(3) == 0;
                    if indefinite {
                        out.push(major << 5 | 31);
                    } else {
                        self.head(out, major, count);
                    }
                    for _ in 0..count * if major == 5 { 2 } else { 1 } {
                        self.item(out, depth + 1);
                    }
                    if indefinite {
                        out.push(BREAK);
                    }
                }
                8 => {
                    let tag =
                        [2, 3, 2, 3, 0, 24, 1_000_000][usize::try_from(self.below(7)).unwrap()];
                    self.head(out, 6, tag);
                    if self.below(2) == 0 {
                        let len = self.below(20);
                        self.head(out, 2, len);
                        for _ in 0..len {
                            out.push(if self.below(3) == 0 { 0 } else { self.byte() });
                        }
                    } else {
                        self.item(out, depth + 1);
                    }
                }
                _ => {
                    // Deep nesting around the recursion limit.
                    let deep = 14 + self.below(5);
                    for _ in 0..deep {
                        out.push(if self.below(3) == 0 { 0xc1 } else { 0x81 });
                    }
                    out.push(0x00);
                }
            }
        }
    }

    #[test]
    fn decodes_what_ciborium_decodes() {
        let mut random = Random(0x2545_f491_4f6c_dd1d);
        let mut decoded = 0;
        for _ in 0..50_000 {
            let mut bytes = Vec::new();
            random.item(&mut bytes, 0);
            match random.below(8) {
                0 if !bytes.is_empty() => {
                    bytes.truncate(usize::try_from(random.below(bytes.len() as u64)).unwrap());
                }
                1 => bytes.push(random.byte()),
                2 if !bytes.is_empty() => {
                    let at = usize::try_from(random.below(bytes.len() as u64)).unwrap();
                    bytes[at] = random.byte();
                }
                _ => {}
            }
            if compare(&bytes) {
                decoded += 1;
            }
        }
        assert!(decoded > 20_000, "only {decoded} items decoded");
    }

    #[test]
    fn encodes_as_ciborium_encodes() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            random.item(&mut bytes, 0);
            let Ok(value) = decode(&bytes, 16) else {
                continue;
            };
            if format!("{value:?}").contains("Float") {
                continue;
            }
            let mut theirs = Vec::new();
            ciborium::into_writer(&value, &mut theirs).unwrap();
            assert_eq!(encode(&value), theirs, "{value:?}");
        }
    }
}
