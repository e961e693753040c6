//! A policy file's TOML, read by the `toml` crate's own parser (`toml::de::DeTable`, feature
//! `parse` only) into the few types a policy uses. Without toml's serde layer and its
//! `Deserialize` machinery the browser bundle carries the parser and nothing else
//! (docs/BENCHMARKS.md, "wasm bundle size"); natively and in the browser it is the same reader.
//!
//! Everything TOML 1.1 allows is read as the crate reads it (dotted keys, table headers of any
//! depth, every string form). What no policy key takes is refused here with the key's name:
//! floats, dates and times.

use toml::de::{DeTable, DeValue};

/// A value: the TOML types a policy uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// A string of any TOML form.
    String(String),
    /// A 64-bit signed integer.
    Integer(i64),
    /// `true` or `false`.
    Boolean(bool),
    /// An array, or an array of tables (`[[key]]`).
    Array(Vec<Value>),
    /// A table: a header's, an inline one, or one made by dotted keys.
    Table(Table),
}

/// A table: each key once, in key order (the order of `[[accept]]` rules is their array's).
pub(crate) type Table = Vec<(String, Value)>;

/// How deep arrays and tables may nest in a policy. The deepest a policy needs is 3
/// (`accept` → a rule → `min_snp_tcb`); toml's parser has its own, larger, bound.
const MAX_DEPTH: usize = 8;

/// Reads `text` into its root table; the error says where and what.
pub(crate) fn parse(text: &str) -> Result<Table, String> {
    let root = DeTable::parse(text).map_err(|e| e.to_string())?;
    table(root.into_inner(), MAX_DEPTH, "")
}

fn table(entries: DeTable<'_>, depth: usize, path: &str) -> Result<Table, String> {
    let depth = depth
        .checked_sub(1)
        .ok_or_else(|| format!("{path}: tables and arrays nest deeper than a policy does"))?;
    let mut table = entries
        .into_iter()
        .map(|(key, value)| {
            let key = key.into_inner().into_owned();
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let value = self::value(value.into_inner(), depth, &path)?;
            Ok((key, value))
        })
        .collect::<Result<Table, String>>()?;
    // toml keeps a table's keys in document order when some crate of the build turns on its
    // `preserve_order`, else sorted: sorted here, the policy reads the same in every build.
    table.sort_by(|(a, _), (b, _)| a.cmp(b));
    Ok(table)
}

fn value(value: DeValue<'_>, depth: usize, path: &str) -> Result<Value, String> {
    match value {
        DeValue::String(s) => Ok(Value::String(s.into_owned())),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(Value::Integer)
            .map_err(|_| format!("{path}: {i} does not fit a 64-bit integer")),
        DeValue::Boolean(b) => Ok(Value::Boolean(b)),
        DeValue::Float(_) | DeValue::Datetime(_) => {
            Err(format!("{path}: a policy has no floats, dates or times"))
        }
        DeValue::Array(items) => {
            let depth = depth.checked_sub(1).ok_or_else(|| {
                format!("{path}: tables and arrays nest deeper than a policy does")
            })?;
            items
                .into_iter()
                .map(|item| self::value(item.into_inner(), depth, path))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        DeValue::Table(entries) => table(entries, depth, path).map(Value::Table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Value {
        Value::String(s.to_owned())
    }

    #[test]
    fn a_policy_reads_as_toml_and_keeps_its_rules_in_order() {
        let text = "# a comment\r\n[[accept]]\nplatform = \"tdx\" # trailing\nmin_snp_tcb = { snp = 22, microcode = 0xd5 }\nallow_tcb = [\n  'OutOfDate', # one\n  \"SWHardeningNeeded\",\n]\n\n[[accept]]\n\"quoted key\" = true\na . b = -1_000\n[accept.min_snp_tcb]\ntee = 0o17\n";
        let root = parse(text).unwrap();
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

    #[test]
    fn what_no_policy_holds_is_refused_naming_the_key() {
        for (text, message) in [
            ("a = 1.5", "a: a policy has no floats, dates or times"),
            (
                "[t]\nb = 1979-05-27",
                "t.b: a policy has no floats, dates or times",
            ),
            ("a = [inf]", "a: a policy has no floats, dates or times"),
            (
                "a = [[[[[[[[1]]]]]]]]",
                "a: tables and arrays nest deeper than a policy does",
            ),
        ] {
            assert_eq!(parse(text), Err(message.to_owned()), "{text:?}");
        }
        for text in [
            "a = 1\na = 2",
            "a = \"x\" b = 1",
            "a = \"x",
            "a = [1 2]",
            "= 1",
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains("line"), "{text:?}: {error}");
        }
        assert!(parse("a = 9223372036854775808").is_err());
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_crash() {
        let deep = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep).is_err());
        let deep = format!("a = {}1{}", "{ b = ".repeat(50_000), " }".repeat(50_000));
        assert!(parse(&deep).is_err());
    }
}
