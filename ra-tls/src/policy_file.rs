//! A policy file's document, read into the few types a policy uses, from one of two forms:
//!
//! - TOML (feature `toml`, every native build): by `toml-span`, a TOML parser without serde
//!   (cargo-deny's), so every TOML form reads (dotted keys, table headers of any depth, every
//!   string form), nesting bounded by the parser;
//! - JSON: the same document as the browser package hands it over. The wasm modules link no TOML
//!   parser at all (a parser crate costs each gzipped module about 30 KB, a tenth of its budget:
//!   docs/BENCHMARKS.md, "wasm bundle size"); the package reads the dapp's TOML with the npm
//!   library `smol-toml` and passes the document on as JSON, which serde_json, already in every
//!   module, reads.
//!
//! Either way what no policy key takes is refused here with the key's name: floats, and dates
//! and times (toml-span refuses them itself; the package refuses them before the JSON).

#[cfg(feature = "toml")]
use toml_span::value::ValueInner;

/// A value: the types a policy uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// A string.
    String(String),
    /// A 64-bit signed integer.
    Integer(i64),
    /// `true` or `false`.
    Boolean(bool),
    /// An array, or TOML's array of tables (`[[key]]`).
    Array(Vec<Value>),
    /// A table (a JSON object).
    Table(Table),
}

/// A table: each key once, in key order (the order of `[[accept]]` rules is their array's).
pub(crate) type Table = Vec<(String, Value)>;

/// How deep arrays and tables may nest in a policy. The deepest a policy needs is 3
/// (`accept` → a rule → `min_snp_tcb`); toml-span's parser has its own bound.
const MAX_DEPTH: usize = 8;

/// Reads TOML `text` into its root table; the error says where and what.
#[cfg(feature = "toml")]
pub(crate) fn toml(text: &str) -> Result<Table, String> {
    let mut root = toml_span::parse(text).map_err(|e| match e.line_info {
        // toml-span counts lines and columns from 0.
        Some((line, column)) => format!(
            "TOML line {}, column {}: {e}",
            line.saturating_add(1),
            column.saturating_add(1)
        ),
        None => format!("TOML: {e}"),
    })?;
    root_table(toml_value(root.take(), MAX_DEPTH, "")?)
}

/// Reads the JSON form of a policy document (an object) into its root table.
pub(crate) fn json(text: &str) -> Result<Table, String> {
    // serde_json bounds its own recursion (128 levels) before `json_value` bounds the tree.
    let root: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("policy JSON: {e}"))?;
    root_table(json_value(root, MAX_DEPTH, "")?)
}

fn root_table(root: Value) -> Result<Table, String> {
    match root {
        Value::Table(table) => Ok(table),
        _ => Err("the policy document is not a table".into()),
    }
}

/// One level deeper than `depth`, or the error of a tree that nests too deep at `path`.
fn nested(depth: usize, path: &str) -> Result<usize, String> {
    depth
        .checked_sub(1)
        .ok_or_else(|| format!("{path}: tables and arrays nest deeper than a policy does"))
}

/// The key path of `key` inside the table at `path`, for messages.
fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn json_value(value: serde_json::Value, depth: usize, path: &str) -> Result<Value, String> {
    use serde_json::Value as Json;
    match value {
        Json::String(s) => Ok(Value::String(s)),
        Json::Number(n) => n
            .as_i64()
            .map(Value::Integer)
            .ok_or_else(|| format!("{path}: a policy has only 64-bit integers, not {n}")),
        Json::Bool(b) => Ok(Value::Boolean(b)),
        Json::Null => Err(format!("{path}: a policy has no nulls")),
        Json::Array(items) => {
            let depth = nested(depth, path)?;
            items
                .into_iter()
                .map(|item| json_value(item, depth, path))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        Json::Object(entries) => {
            let depth = nested(depth, path)?;
            let mut table = entries
                .into_iter()
                .map(|(key, value)| {
                    let value = json_value(value, depth, &child(path, &key))?;
                    Ok((key, value))
                })
                .collect::<Result<Table, String>>()?;
            // serde_json's map is sorted unless some crate of the build asks for document order.
            table.sort_by(|(a, _), (b, _)| a.cmp(b));
            Ok(Value::Table(table))
        }
    }
}

#[cfg(feature = "toml")]
fn toml_value(value: ValueInner<'_>, depth: usize, path: &str) -> Result<Value, String> {
    match value {
        ValueInner::String(s) => Ok(Value::String(s.into_owned())),
        ValueInner::Integer(i) => Ok(Value::Integer(i)),
        ValueInner::Boolean(b) => Ok(Value::Boolean(b)),
        ValueInner::Float(_) => Err(format!("{path}: a policy has no floats")),
        ValueInner::Array(items) => {
            let depth = nested(depth, path)?;
            items
                .into_iter()
                .map(|mut item| toml_value(item.take(), depth, path))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        ValueInner::Table(entries) => {
            let depth = nested(depth, path)?;
            // A BTreeMap: the keys come sorted, the same in every build.
            entries
                .into_iter()
                .map(|(key, mut value)| {
                    let key = key.name.into_owned();
                    let value = toml_value(value.take(), depth, &child(path, &key))?;
                    Ok((key, value))
                })
                .collect::<Result<_, _>>()
                .map(Value::Table)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Value {
        Value::String(s.to_owned())
    }

    #[cfg(feature = "toml")]
    #[test]
    fn a_policy_reads_as_toml_and_keeps_its_rules_in_order() {
        let text = "# a comment\r\n[[accept]]\nplatform = \"tdx\" # trailing\nmin_snp_tcb = { snp = 22, microcode = 0xd5 }\nallow_tcb = [\n  'OutOfDate', # one\n  \"SWHardeningNeeded\",\n]\n\n[[accept]]\n\"quoted key\" = true\na . b = -1_000\n[accept.min_snp_tcb]\ntee = 0o17\n";
        let root = toml(text).unwrap();
        let accept = Value::Array(vec![
            Value::Table(vec![
                (
                    "allow_tcb".into(),
                    Value::Array(vec![string("OutOfDate"), string("SWHardeningNeeded")]),
                ),
                (
                    "min_snp_tcb".into(),
                    Value::Table(vec![
                        ("microcode".into(), Value::Integer(0xd5)),
                        ("snp".into(), Value::Integer(22)),
                    ]),
                ),
                ("platform".into(), string("tdx")),
            ]),
            Value::Table(vec![
                (
                    "a".into(),
                    Value::Table(vec![("b".into(), Value::Integer(-1000))]),
                ),
                (
                    "min_snp_tcb".into(),
                    Value::Table(vec![("tee".into(), Value::Integer(15))]),
                ),
                ("quoted key".into(), Value::Boolean(true)),
            ]),
        ]);
        assert_eq!(root, vec![("accept".into(), accept)]);
    }

    #[cfg(feature = "toml")]
    #[test]
    fn what_no_policy_holds_is_refused_naming_the_key() {
        for (text, message) in [
            ("a = 1.5", "a: a policy has no floats"),
            ("[t]\nb = [inf]", "t.b: a policy has no floats"),
            (
                "a = [[[[[[[[1]]]]]]]]",
                "a: tables and arrays nest deeper than a policy does",
            ),
        ] {
            assert_eq!(toml(text), Err(message.to_owned()), "{text:?}");
        }
        for text in [
            "a = 1\na = 2",
            "a = \"x\" b = 1",
            "a = \"x",
            "a = [1 2]",
            "= 1",
        ] {
            let error = toml(text).unwrap_err();
            assert!(error.contains("line"), "{text:?}: {error}");
        }
        assert!(toml("a = 9223372036854775808").is_err());
        // Dates and times are not TOML values toml-span reads; no policy key takes one.
        for text in ["a = 1979-05-27", "a = 07:32:00", "a = 1979-05-27T07:32:00Z"] {
            assert!(toml(text).is_err(), "{text:?}");
        }
        // The line and column count from 1, as an editor shows them.
        let error = toml("a = 1\n\nb = [1 2]").unwrap_err();
        assert!(error.starts_with("TOML line 3, column "), "{error}");
    }

    #[cfg(feature = "toml")]
    #[test]
    fn the_json_form_reads_to_the_same_tables() {
        let text = "[[accept]]\nplatform = \"sev-snp\"\nmeasurement = \"ab\"\nmin_snp_tcb = { snp = 22 }\nallow_tcb = [\"OutOfDate\"]\nallow_migration_agent = false\n[[accept]]\nplatform = \"tdx\"\n";
        let document = r#"{"accept": [
            {"platform": "sev-snp", "min_snp_tcb": {"snp": 22}, "measurement": "ab",
             "allow_tcb": ["OutOfDate"], "allow_migration_agent": false},
            {"platform": "tdx"}]}"#;
        assert_eq!(json(document), toml(text));
    }

    #[test]
    fn the_json_form_refuses_what_no_policy_holds() {
        for (document, message) in [
            (
                r#"{"a": 1.5}"#,
                "a: a policy has only 64-bit integers, not 1.5",
            ),
            (
                r#"{"a": {"b": 18446744073709551615}}"#,
                "a.b: a policy has only 64-bit integers, not 18446744073709551615",
            ),
            (r#"{"a": [null]}"#, "a: a policy has no nulls"),
            ("[]", "the policy document is not a table"),
            (
                r#"{"a": [[[[[[[[1]]]]]]]]}"#,
                "a: tables and arrays nest deeper than a policy does",
            ),
        ] {
            assert_eq!(json(document), Err(message.to_owned()), "{document}");
        }
        assert!(json("{").unwrap_err().starts_with("policy JSON: "));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(json(&deep).is_err());
    }

    #[cfg(feature = "toml")]
    #[test]
    fn hostile_nesting_is_an_error_not_a_crash() {
        let deep = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(toml(&deep).is_err());
        let deep = format!("a = {}1{}", "{ b = ".repeat(50_000), " }".repeat(50_000));
        assert!(toml(&deep).is_err());
    }
}
