//! CBOR (RFC 8949) to and from [`ciborium::Value`] without serde: ciborium's serde
//! deserializer, its error paths and the float formatting they link were about 17 KB of the
//! gzipped browser bundle (docs/BENCHMARKS.md, "wasm bundle size"), for the few items of an
//! RA-TLS certificate (the CMW, the claims, the simulated report).
//!
//! [`decode`] reads exactly what `ciborium::de::from_reader_with_recursion_limit` reads, to the
//! same value: definite and indefinite lengths, tags (bignums of up to 16 bytes as integers, as
//! ciborium has them), half, single and double floats, `null` and `undefined` as
//! [`Value::Null`]; it refuses what ciborium refuses. [`encode`] writes what
//! `ciborium::into_writer` writes for the values the verifier builds (no floats). The tests hold
//! both to ciborium on random items.

use std::fmt;

use ciborium::value::{Integer, Value};

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
    let mut reader = Reader { bytes, offset: 0 };
    let value = reader.item(depth)?;
    if reader.offset == bytes.len() {
        Ok(value)
    } else {
        Err(reader.error("trailing bytes after the item"))
    }
}

/// Encodes `value` with the shortest heads and definite lengths (ciborium's encoding).
pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, value);
    out
}

const TAG_BIGPOS: u64 = 2;
const TAG_BIGNEG: u64 = 3;
const BREAK: u8 = 0xff;

/// An item's first byte and its argument: `None` for an indefinite length.
struct Head {
    major: u8,
    minor: u8,
    argument: Option<u64>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Reader<'_> {
    fn error(&self, what: &'static str) -> CborError {
        CborError {
            offset: self.offset,
            what,
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        let end = self
            .offset
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error("truncated item"))?;
        let taken = self.bytes.get(self.offset..end).unwrap_or_default();
        self.offset = end;
        Ok(taken)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.offset).copied()
    }

    fn head(&mut self) -> Result<Head, CborError> {
        let [first] = *self.take(1)? else {
            return Err(self.error("truncated item"));
        };
        let (major, minor) = (first >> 5, first & 0x1f);
        let argument = match minor {
            0..=23 => Some(u64::from(minor)),
            24..=27 => {
                let width = 1_usize << (minor - 24);
                let mut value = 0_u64;
                for byte in self.take(width)? {
                    value = value << 8 | u64::from(*byte);
                }
                Some(value)
            }
            31 => None,
            _ => return Err(self.error("reserved additional information")),
        };
        Ok(Head {
            major,
            minor,
            argument,
        })
    }

    /// A length: a usize, or `None` for indefinite.
    fn length(&self, argument: Option<u64>) -> Result<Option<usize>, CborError> {
        argument
            .map(|n| usize::try_from(n).map_err(|_| self.error("length out of range")))
            .transpose()
    }

    /// Whether the next byte is a break, consuming it if so.
    fn at_break(&mut self) -> Result<bool, CborError> {
        match self.peek() {
            Some(BREAK) => {
                self.offset = self.offset.saturating_add(1);
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(self.error("truncated item")),
        }
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        let head = self.head()?;
        let definite = |reader: &Self| {
            head.argument
                .ok_or_else(|| reader.error("indefinite length where none is allowed"))
        };
        match head.major {
            0 => Ok(Value::Integer(definite(self)?.into())),
            1 => {
                let magnitude = i128::from(definite(self)?);
                Ok(Value::Integer(integer(-1 - magnitude)))
            }
            2 => self.bytes_of(2, head.argument).map(Value::Bytes),
            3 => {
                let bytes = self.bytes_of(3, head.argument)?;
                String::from_utf8(bytes)
                    .map(Value::Text)
                    .map_err(|_| self.error("text is not UTF-8"))
            }
            4 | 5 => {
                let inner = depth
                    .checked_sub(1)
                    .ok_or_else(|| self.error("nested too deep"))?;
                let length = self.length(head.argument)?;
                if head.major == 4 {
                    let mut items = Vec::new();
                    while self.more(length, items.len())? {
                        items.push(self.item(inner)?);
                    }
                    Ok(Value::Array(items))
                } else {
                    let mut entries = Vec::new();
                    while self.more(length, entries.len())? {
                        let key = self.item(inner)?;
                        entries.push((key, self.item(inner)?));
                    }
                    Ok(Value::Map(entries))
                }
            }
            6 => self.tagged(definite(self)?, depth),
            _ => self.simple_or_float(&head),
        }
    }

    /// Whether a container of `length` (`None`: until a break) holding `count` has more.
    fn more(&mut self, length: Option<usize>, count: usize) -> Result<bool, CborError> {
        match length {
            Some(length) => Ok(count < length),
            None => Ok(!self.at_break()?),
        }
    }

    /// The content of a byte (major 2) or text (major 3) string: definite, or the definite
    /// chunks of an indefinite one, each chunk valid UTF-8 on its own for text.
    fn bytes_of(&mut self, major: u8, argument: Option<u64>) -> Result<Vec<u8>, CborError> {
        if let Some(length) = self.length(argument)? {
            return Ok(self.take(length)?.to_vec());
        }
        let mut content = Vec::new();
        while !self.at_break()? {
            let chunk = self.head()?;
            if chunk.major != major {
                return Err(self.error("a chunk of another type in an indefinite string"));
            }
            let length = self
                .length(chunk.argument)?
                .ok_or_else(|| self.error("an indefinite chunk in an indefinite string"))?;
            let bytes = self.take(length)?;
            if major == 3 && std::str::from_utf8(bytes).is_err() {
                return Err(self.error("text is not UTF-8"));
            }
            content.extend_from_slice(bytes);
        }
        Ok(content)
    }

    /// A tag: a bignum (tags 2 and 3 over a definite byte string of at most 16 bytes) as an
    /// integer where it fits, any other tag around its item.
    fn tagged(&mut self, tag: u64, depth: usize) -> Result<Value, CborError> {
        let start = self.offset;
        if tag == TAG_BIGPOS || tag == TAG_BIGNEG {
            let next = self.head()?;
            if next.major == 2
                && let Some(length) = self.length(next.argument)?.filter(|l| *l <= 16)
            {
                let mut raw = 0_u128;
                for byte in self.take(length)? {
                    raw = raw << 8 | u128::from(*byte);
                }
                return if tag == TAG_BIGPOS {
                    Ok(big(TAG_BIGPOS, raw))
                } else {
                    i128::try_from(raw)
                        .map(|_| big(TAG_BIGNEG, raw))
                        .map_err(|_| self.error("integer too large"))
                };
            }
            self.offset = start;
        }
        let inner = depth
            .checked_sub(1)
            .ok_or_else(|| self.error("nested too deep"))?;
        Ok(Value::Tag(tag, Box::new(self.item(inner)?)))
    }

    fn simple_or_float(&self, head: &Head) -> Result<Value, CborError> {
        let argument = head.argument;
        match (head.minor, argument) {
            (25, Some(bits)) => Ok(Value::Float(half_to_f64(bits))),
            (26, Some(bits)) => Ok(Value::Float(f64::from(f32::from_bits(
                u32::try_from(bits).unwrap_or_default(),
            )))),
            (27, Some(bits)) => Ok(Value::Float(f64::from_bits(bits))),
            (_, None) => Err(self.error("a break outside an indefinite item")),
            (_, Some(20)) => Ok(Value::Bool(false)),
            (_, Some(21)) => Ok(Value::Bool(true)),
            (_, Some(22 | 23)) => Ok(Value::Null),
            _ => Err(self.error("an unknown simple value")),
        }
    }
}

/// An integer within CBOR's range (-2^64 to 2^64 - 1).
fn integer(value: i128) -> Integer {
    Integer::try_from(value).unwrap_or_else(|_| Integer::from(0_u8))
}

/// The bignum `raw` of tag 2 (`raw`) or 3 (`-1 - raw`): an integer where one holds it, else the
/// tag around its bytes without leading zeros (ciborium's `Value::from(u128/i128)`).
fn big(tag: u64, raw: u128) -> Value {
    if let Ok(magnitude) = u64::try_from(raw) {
        let value = i128::from(magnitude);
        return Value::Integer(integer(if tag == TAG_BIGPOS { value } else { -1 - value }));
    }
    let bytes = raw.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Value::Tag(
        tag,
        Box::new(Value::Bytes(
            bytes.get(first..).unwrap_or_default().to_vec(),
        )),
    )
}

/// An IEEE 754 half-precision float.
fn half_to_f64(bits: u64) -> f64 {
    let bits = u32::try_from(bits).unwrap_or_default();
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = (bits >> 10) & 0x1f;
    let mantissa = f64::from(bits & 0x3ff);
    sign * match exponent {
        0 => mantissa * 2_f64.powi(-24),
        0x1f if mantissa == 0.0 => f64::INFINITY,
        0x1f => f64::NAN,
        _ => (1.0 + mantissa / 1024.0) * 2_f64.powi(i32::try_from(exponent).unwrap_or(0) - 15),
    }
}

fn write_head(out: &mut Vec<u8>, major: u8, argument: u64) {
    let major = major << 5;
    match argument {
        0..=23 => out.push(major | u8::try_from(argument).unwrap_or_default()),
        24..=0xff => {
            out.push(major | 24);
            out.push(u8::try_from(argument).unwrap_or_default());
        }
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&u16::try_from(argument).unwrap_or_default().to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&u32::try_from(argument).unwrap_or_default().to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&argument.to_be_bytes());
        }
    }
}

fn write_length(out: &mut Vec<u8>, major: u8, length: usize) {
    write_head(out, major, u64::try_from(length).unwrap_or(u64::MAX));
}

fn write(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Integer(integer) => {
            let value = i128::from(*integer);
            match u64::try_from(value) {
                Ok(unsigned) => write_head(out, 0, unsigned),
                Err(_) => write_head(out, 1, u64::try_from(-1 - value).unwrap_or_default()),
            }
        }
        Value::Bytes(bytes) => {
            write_length(out, 2, bytes.len());
            out.extend_from_slice(bytes);
        }
        Value::Text(text) => {
            write_length(out, 3, text.len());
            out.extend_from_slice(text.as_bytes());
        }
        Value::Array(items) => {
            write_length(out, 4, items.len());
            items.iter().for_each(|item| write(out, item));
        }
        Value::Map(entries) => {
            write_length(out, 5, entries.len());
            for (key, value) in entries {
                write(out, key);
                write(out, value);
            }
        }
        Value::Tag(tag, item) => {
            write_head(out, 6, *tag);
            write(out, item);
        }
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Null => out.push(0xf6),
        // The verifier builds no floats; written as doubles (ciborium writes the shortest
        // exact form).
        Value::Float(x) => {
            out.push(0xfb);
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        // `Value` is non-exhaustive.
        _ => out.push(0xf6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
