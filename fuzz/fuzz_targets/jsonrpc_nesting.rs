//! Structure-aware: a valid request whose `params` nest arrays and objects up to 5 000 levels
//! deep, with strings (full of brackets and escapes), numbers and empty containers beside each
//! level, under a depth limit anywhere in the range the configuration accepts. The generator
//! counts the depth; `shroud_fuzz::gateway::jsonrpc_nesting` asserts the answer (too deep over the
//! limit, one call at or under it, never a crash).
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};

/// Deepest `params` generated (finding 1 crashed at 10 000, and at 1 450 on a smaller stack).
const MAX_LEVELS: usize = 5000;
/// `[limits] max_json_depth` is accepted from 3 to 256.
const MIN_LIMIT: usize = 3;
const MAX_LIMIT: usize = 256;
/// Values beside the nested one, per level.
const MAX_SIBLINGS: usize = 2;
/// Characters per generated string.
const MAX_STRING: usize = 24;

/// JSON strings that a scanner counting brackets gets wrong if it mishandles strings.
const TRICKY: [&str; 8] = [
    r#""[[[{{{""#,
    r#""]]]}}}""#,
    r#""\"[""#,
    r#""\\""#,
    r#""\\\"{""#,
    r#""\u005b\u007b""#,
    r#""\"]\"}""#,
    r#""""#,
];

#[derive(Arbitrary, Debug)]
struct Nesting {
    /// The depth limit, reduced into `MIN_LIMIT..=MAX_LIMIT`.
    limit: u16,
    /// Levels of `params`, reduced into `1..=MAX_LEVELS`.
    levels: u16,
    /// The call as the member of a batch (one level more).
    batch: bool,
    /// The shape of each level, from the outside in, repeated when there are more levels.
    layers: Vec<Layer>,
    /// What the innermost level holds.
    innermost: Option<Leaf>,
}

#[derive(Arbitrary, Debug)]
enum Layer {
    Array {
        before: Vec<Leaf>,
    },
    Object {
        before: Vec<(String, Leaf)>,
        key: String,
    },
}

#[derive(Arbitrary, Debug)]
enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Exponent(u128, i16),
    Text(String),
    Tricky(u8),
    EmptyArray,
    EmptyObject,
}

impl Leaf {
    /// Writes the value; returns its own nesting (1 for an empty container).
    fn write(&self, out: &mut Vec<u8>) -> usize {
        match self {
            Leaf::Null => out.extend_from_slice(b"null"),
            Leaf::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Leaf::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
            // serde_json writes `null` for what JSON cannot hold.
            Leaf::Float(x) => out.extend_from_slice(
                serde_json::to_string(x)
                    .unwrap_or_else(|_| "null".into())
                    .as_bytes(),
            ),
            Leaf::Exponent(m, e) => out.extend_from_slice(format!("{m}e{e}").as_bytes()),
            Leaf::Text(s) => write_string(s, out),
            Leaf::Tricky(n) => {
                let s = TRICKY
                    .get(usize::from(*n) % TRICKY.len())
                    .unwrap_or(&"\"\"");
                out.extend_from_slice(s.as_bytes());
            }
            Leaf::EmptyArray => {
                out.extend_from_slice(b"[]");
                return 1;
            }
            Leaf::EmptyObject => {
                out.extend_from_slice(b"{}");
                return 1;
            }
        }
        0
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    let s: String = s.chars().take(MAX_STRING).collect();
    out.extend_from_slice(serde_json::to_string(&s).unwrap_or_default().as_bytes());
}

impl Nesting {
    fn limit(&self) -> usize {
        MIN_LIMIT + usize::from(self.limit) % (MAX_LIMIT - MIN_LIMIT + 1)
    }

    fn levels(&self) -> usize {
        1 + usize::from(self.levels) % MAX_LEVELS
    }

    /// The body and its deepest nesting.
    fn build(&self) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let mut closers = Vec::new();
        let mut depth = 0;
        if self.batch {
            out.push(b'[');
            closers.push(b']');
            depth += 1;
        }
        out.extend_from_slice(br#"{"jsonrpc":"2.0","id":1,"method":"eth_call","params":"#);
        closers.push(b'}');
        depth += 1;
        let mut deepest = depth;
        // Whether the innermost level needs a value (after a `,` or a `:`).
        let mut needs_value = false;
        for level in 0..self.levels() {
            depth += 1;
            deepest = deepest.max(depth);
            let layer = match self.layers.len() {
                0 => None,
                len => self.layers.get(level % len),
            };
            match layer {
                None => {
                    out.push(b'[');
                    closers.push(b']');
                    needs_value = false;
                }
                Some(Layer::Array { before }) => {
                    out.push(b'[');
                    closers.push(b']');
                    needs_value = false;
                    for leaf in before.iter().take(MAX_SIBLINGS) {
                        deepest = deepest.max(depth + leaf.write(&mut out));
                        out.push(b',');
                        needs_value = true;
                    }
                }
                Some(Layer::Object { before, key }) => {
                    out.push(b'{');
                    closers.push(b'}');
                    for (name, leaf) in before.iter().take(MAX_SIBLINGS) {
                        write_string(name, &mut out);
                        out.push(b':');
                        deepest = deepest.max(depth + leaf.write(&mut out));
                        out.push(b',');
                    }
                    write_string(key, &mut out);
                    out.push(b':');
                    needs_value = true;
                }
            }
        }
        match &self.innermost {
            Some(leaf) => deepest = deepest.max(depth + leaf.write(&mut out)),
            None if needs_value => out.extend_from_slice(b"null"),
            None => {}
        }
        out.extend(closers.iter().rev());
        (out, deepest)
    }
}

libfuzzer_sys::fuzz_target!(|nesting: Nesting| {
    let (body, depth) = nesting.build();
    shroud_fuzz::gateway::jsonrpc_nesting(&body, nesting.limit(), depth);
});
