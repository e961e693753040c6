//! Canonical JSON for untrusted input: one pass, linear in the input, no recursion.
//!
//! serde_json cannot do this job alone: reading `params` as a `serde_json::Value` would turn
//! numbers into `f64`/`u64` and silently change large or precise values on their way upstream,
//! and re-parsing each nested `RawValue` costs a pass per nesting level (quadratic). Validation
//! of the whole body stays with serde_json ([`crate::pipeline::parse`] reads it as a `RawValue`
//! first, which serde_json skips iteratively); this module only rewrites text that is already
//! known to be JSON, and still refuses anything unexpected instead of trusting that.
//!
//! Nesting is tracked on an explicit, bounded stack, so no input can exhaust the thread's stack,
//! and [`exceeds_depth`] refuses over-deep bodies before any other work is done.

use std::cmp::Ordering;

/// Why a value could not be canonicalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Nesting deeper than the limit.
    #[error("JSON nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Not JSON (only reachable when the caller skipped validation).
    #[error("malformed JSON")]
    Malformed,
}

/// Whether `text` nests arrays and objects deeper than `max` levels (brackets inside strings do
/// not count). Linear, allocation-free, and run before anything else reads the body.
pub fn exceeds_depth(text: &[u8], max: usize) -> bool {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A member of an object being written: its decoded key and where `"key":value` sits in the
/// output.
struct Member {
    key: String,
    start: usize,
    end: usize,
}

enum Frame {
    Array,
    Object {
        /// Where the object's `{` was written.
        start: usize,
        members: Vec<Member>,
        /// Whether the keys arrived strictly increasing (then nothing needs rewriting).
        in_order: bool,
        /// The key whose value is being written, and where its member started.
        pending: Option<(String, usize)>,
    },
}

#[derive(Clone, Copy)]
enum Expect {
    /// Any value.
    Value,
    /// A value or `]` right after `[`.
    FirstItem,
    /// A key or `}` right after `{`.
    FirstKey,
    /// A key after `,` in an object.
    Key,
    /// A value just ended: `,`, a closing bracket, or the end of input.
    AfterValue,
}

/// Appends the canonical form of the JSON value `text` to `out`: object keys sorted by their
/// decoded bytes (a repeated key keeps its last value), arrays in order, strings decoded and
/// re-escaped the way serde_json writes them, numbers and literals with their exact text, and no
/// whitespace. At most `max_depth` levels of nesting.
///
/// Each byte is copied once, plus once per enclosing object whose keys arrived out of order (at
/// most `max_depth` times).
pub fn canonicalize(text: &str, max_depth: usize, out: &mut Vec<u8>) -> Result<(), JsonError> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut stack: Vec<Frame> = Vec::new();
    let mut expect = Expect::Value;
    loop {
        pos = skip_whitespace(bytes, pos);
        let byte = bytes.get(pos).copied();
        match expect {
            Expect::FirstItem if byte == Some(b']') => {
                pos += 1;
                out.push(b']');
                stack.pop();
                expect = Expect::AfterValue;
            }
            Expect::FirstKey if byte == Some(b'}') => {
                pos += 1;
                close_object(stack.pop(), out)?;
                expect = Expect::AfterValue;
            }
            Expect::Value | Expect::FirstItem => {
                match byte.ok_or(JsonError::Malformed)? {
                    open @ (b'[' | b'{') => {
                        if stack.len() >= max_depth {
                            return Err(JsonError::TooDeep { max: max_depth });
                        }
                        pos += 1;
                        out.push(open);
                        if open == b'[' {
                            stack.push(Frame::Array);
                            expect = Expect::FirstItem;
                        } else {
                            stack.push(Frame::Object {
                                start: out.len() - 1,
                                members: Vec::new(),
                                in_order: true,
                                pending: None,
                            });
                            expect = Expect::FirstKey;
                        }
                        continue;
                    }
                    b'"' => pos = write_string(text, pos, out, None)?,
                    _ => pos = write_scalar(bytes, pos, out)?,
                }
                expect = Expect::AfterValue;
            }
            Expect::FirstKey | Expect::Key => {
                if byte != Some(b'"') {
                    return Err(JsonError::Malformed);
                }
                let member_start = out.len();
                let mut key = String::new();
                pos = write_string(text, pos, out, Some(&mut key))?;
                pos = skip_whitespace(bytes, pos);
                if bytes.get(pos) != Some(&b':') {
                    return Err(JsonError::Malformed);
                }
                pos += 1;
                out.push(b':');
                match stack.last_mut() {
                    Some(Frame::Object { pending, .. }) => *pending = Some((key, member_start)),
                    _ => return Err(JsonError::Malformed),
                }
                expect = Expect::Value;
            }
            Expect::AfterValue => {
                let end = out.len();
                match stack.last_mut() {
                    None => {
                        return if pos == bytes.len() {
                            Ok(())
                        } else {
                            Err(JsonError::Malformed)
                        };
                    }
                    Some(Frame::Object {
                        members,
                        in_order,
                        pending,
                        ..
                    }) => {
                        let (key, start) = pending.take().ok_or(JsonError::Malformed)?;
                        if members
                            .last()
                            .is_some_and(|last| last.key.as_bytes() >= key.as_bytes())
                        {
                            *in_order = false;
                        }
                        members.push(Member { key, start, end });
                    }
                    Some(Frame::Array) => {}
                }
                let is_object = matches!(stack.last(), Some(Frame::Object { .. }));
                pos += 1;
                match (byte, is_object) {
                    (Some(b','), false) => {
                        out.push(b',');
                        expect = Expect::Value;
                    }
                    (Some(b','), true) => {
                        out.push(b',');
                        expect = Expect::Key;
                    }
                    (Some(b']'), false) => {
                        out.push(b']');
                        stack.pop();
                    }
                    (Some(b'}'), true) => close_object(stack.pop(), out)?,
                    _ => return Err(JsonError::Malformed),
                }
            }
        }
    }
}

/// Writes the closing `}` of an object, first rewriting its members in key order (last value of
/// a repeated key) when they did not arrive that way.
fn close_object(frame: Option<Frame>, out: &mut Vec<u8>) -> Result<(), JsonError> {
    let Some(Frame::Object {
        start,
        mut members,
        in_order,
        pending: None,
    }) = frame
    else {
        return Err(JsonError::Malformed);
    };
    if in_order {
        out.push(b'}');
        return Ok(());
    }
    // Stable: members with the same key keep their arrival order, so the last one of each run
    // is the one that counts.
    members.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
    let mut rewritten = Vec::with_capacity(out.len().saturating_sub(start) + 1);
    rewritten.push(b'{');
    let mut first = true;
    for (n, member) in members.iter().enumerate() {
        let superseded = members
            .get(n + 1)
            .is_some_and(|next| next.key.as_bytes().cmp(member.key.as_bytes()) == Ordering::Equal);
        if superseded {
            continue;
        }
        if !first {
            rewritten.push(b',');
        }
        first = false;
        let text = out
            .get(member.start..member.end)
            .ok_or(JsonError::Malformed)?;
        rewritten.extend_from_slice(text);
    }
    rewritten.push(b'}');
    out.truncate(start);
    out.extend_from_slice(&rewritten);
    Ok(())
}

fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while matches!(bytes.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

/// Writes the string token starting at `pos` (its opening quote) in serde_json's escaping and
/// returns the position after its closing quote; with `key`, also stores the decoded text.
fn write_string(
    text: &str,
    pos: usize,
    out: &mut Vec<u8>,
    key: Option<&mut String>,
) -> Result<usize, JsonError> {
    let bytes = text.as_bytes();
    let mut end = pos + 1;
    let mut escapes = false;
    loop {
        match bytes.get(end) {
            None => return Err(JsonError::Malformed),
            Some(b'"') => break,
            Some(b'\\') => {
                escapes = true;
                end += 2;
            }
            Some(byte) if *byte < 0x20 => return Err(JsonError::Malformed),
            Some(_) => end += 1,
        }
    }
    let token = text.get(pos..=end).ok_or(JsonError::Malformed)?;
    if escapes {
        // Decoding and re-encoding through serde_json gives one spelling per string.
        let decoded: String = serde_json::from_str(token).map_err(|_| JsonError::Malformed)?;
        serde_json::to_writer(&mut *out, &decoded).map_err(|_| JsonError::Malformed)?;
        if let Some(key) = key {
            *key = decoded;
        }
    } else {
        // Without escapes the text is already serde_json's spelling.
        out.extend_from_slice(token.as_bytes());
        if let Some(key) = key {
            key.push_str(token.get(1..token.len() - 1).ok_or(JsonError::Malformed)?);
        }
    }
    Ok(end + 1)
}

/// Copies the number or literal starting at `pos` verbatim, after checking its grammar.
fn write_scalar(bytes: &[u8], pos: usize, out: &mut Vec<u8>) -> Result<usize, JsonError> {
    let mut end = pos;
    while bytes
        .get(end)
        .is_some_and(|b| !matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
    {
        end += 1;
    }
    let token = bytes.get(pos..end).ok_or(JsonError::Malformed)?;
    if !(matches!(token, b"true" | b"false" | b"null") || is_number(token)) {
        return Err(JsonError::Malformed);
    }
    out.extend_from_slice(token);
    Ok(end)
}

/// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_number(token: &[u8]) -> bool {
    let mut rest = token.strip_prefix(b"-").unwrap_or(token);
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    match rest.first() {
        Some(b'0') => rest = rest.get(1..).unwrap_or_default(),
        Some(b'1'..=b'9') => rest = rest.get(digits(rest)..).unwrap_or_default(),
        _ => return false,
    }
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = fraction.get(n..).unwrap_or_default();
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return false;
        }
        rest = exponent.get(n..).unwrap_or_default();
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Result<String, JsonError> {
        let mut out = Vec::new();
        canonicalize(text, 64, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn sorts_keys_at_every_depth_and_drops_whitespace() {
        assert_eq!(
            canon(r#" [ { "z" : 1 , "a" : { "y" : [ 2 , { "b" : 3 , "a" : 4 } ] , "b" : 3 } } ] "#)
                .unwrap(),
            r#"[{"a":{"b":3,"y":[2,{"a":4,"b":3}]},"z":1}]"#
        );
    }

    #[test]
    fn keeps_numbers_and_literals_verbatim() {
        assert_eq!(
            canon("[123456789012345678901234567890, 1.50, -0, 1e400, 2E-7, true, false, null]")
                .unwrap(),
            "[123456789012345678901234567890,1.50,-0,1e400,2E-7,true,false,null]"
        );
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        assert_eq!(
            canon(r#"{"k":1,"a":0,"k":2,"k":3}"#).unwrap(),
            r#"{"a":0,"k":3}"#
        );
        assert_eq!(canon(r#"{"k":1,"k":2}"#).unwrap(), r#"{"k":2}"#);
    }

    #[test]
    fn strings_are_re_escaped_one_way() {
        assert_eq!(
            canon(r#"{"\u0062":"\u0041\n\/\u00e9\ud83d\ude00","a":"plain é"}"#).unwrap(),
            "{\"a\":\"plain é\",\"b\":\"A\\n/é😀\"}"
        );
        // Keys sort by their decoded text, whatever their spelling.
        assert_eq!(canon(r#"{"\u007a":1,"y":2}"#).unwrap(), r#"{"y":2,"z":1}"#);
    }

    #[test]
    fn empty_containers() {
        assert_eq!(canon("[ ]").unwrap(), "[]");
        assert_eq!(canon("{ }").unwrap(), "{}");
        assert_eq!(canon(r#"{"a":[],"b":{}}"#).unwrap(), r#"{"a":[],"b":{}}"#);
    }

    #[test]
    fn depth_is_bounded_without_recursion() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(exceeds_depth(deep.as_bytes(), 64));
        assert_eq!(
            canonicalize(&deep, 64, &mut Vec::new()),
            Err(JsonError::TooDeep { max: 64 })
        );
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(!exceeds_depth(ok.as_bytes(), 64));
        assert_eq!(canon(&ok).unwrap(), ok);
        // Brackets inside strings are not nesting.
        assert!(!exceeds_depth(br#"["[[[[[\"[[[["]"#, 2));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for text in [
            "",
            "[",
            "{",
            "[1,",
            r#"{"a"}"#,
            r#"{"a":}"#,
            "[1 2]",
            "01",
            "1.",
            "-",
            "1e",
            "tru",
            "[1]]",
            r#"{"a":1,}"#,
            "[,1]",
            "\"\\",
            "\"abc",
            "{1:2}",
            "[\"\u{1}\"]",
            "nul",
            "[}",
            "{]",
        ] {
            assert_eq!(canon(text), Err(JsonError::Malformed), "{text:?}");
        }
    }

    #[test]
    fn agrees_with_serde_json_on_what_it_accepts() {
        for text in [
            r#"{"b":[1,{"d":null,"c":"x"}],"a":-1.5e3}"#,
            r#"[[],[[]],{"":0}]"#,
            r#""just a string""#,
        ] {
            let ours = canon(text).unwrap();
            let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&ours).unwrap(),
                theirs
            );
        }
    }
}
