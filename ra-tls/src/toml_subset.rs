//! The part of TOML that policy files are written in, read without the `toml` crate, whose
//! parser, serde layer and date types were a sixth of the browser bundle (about 50 KB gzipped:
//! docs/BENCHMARKS.md, "wasm bundle size").
//!
//! What a policy can hold is read as TOML 1.1 reads it: comments; bare, quoted and dotted keys;
//! basic strings with every escape and literal strings; integers (decimal, `0x`, `0o`, `0b`,
//! with underscores); booleans; arrays and inline tables, over several lines; table headers of
//! one key (`[[accept]]`). What no policy holds is refused with a message saying so, never read
//! another way: floats, dates and times, multi-line strings, headers of dotted keys
//! (`[accept.min_snp_tcb]`: write `min_snp_tcb = { … }` instead). The tests hold it to the
//! `toml` crate: whatever this reads, `toml` reads to the same value.

use std::fmt;

/// A value: the TOML types a policy uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// A basic or literal string.
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

/// A table: its keys in document order, each once.
pub(crate) type Table = Vec<(String, Value)>;

/// Why a text is not a policy's TOML: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TomlError {
    line: usize,
    message: String,
}

impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TOML line {}: {}", self.line, self.message)
    }
}

/// Reads `text` into its root table.
pub(crate) fn parse(text: &str) -> Result<Table, TomlError> {
    let mut reader = Reader {
        text,
        pos: usize::from(text.starts_with('\u{feff}')) * '\u{feff}'.len_utf8(),
    };
    let mut root = Vec::new();
    let mut section = Section::Root;
    loop {
        reader.skip_blank();
        match reader.peek() {
            None => break,
            Some(b'#' | b'\r' | b'\n') => {}
            Some(b'[') => section = reader.header(&mut root)?,
            Some(_) => {
                let (path, value) = reader.key_value()?;
                let table = section.table(&mut root).ok_or_else(|| {
                    reader.error("internal: the current table header went missing".into())
                })?;
                insert(table, &path, value).map_err(|m| reader.error(m))?;
            }
        }
        reader.end_of_line()?;
    }
    Ok(close(root))
}

/// A table while it is read: what each key holds decides what may still be added to it.
type Open = Vec<(String, Node)>;

enum Node {
    /// A value, closed: inline tables and arrays included.
    Value(Value),
    /// A table made by dotted keys (`a.b = 1`), open to more of them in its section.
    Dotted(Open),
    /// A table of a `[key]` header.
    Header(Open),
    /// An array of tables, one per `[[key]]` header.
    Tables(Vec<Open>),
}

/// The table that key/value lines go into.
enum Section {
    Root,
    /// `[key]`.
    Table(String),
    /// The last table of `[[key]]`.
    LastOf(String),
}

impl Section {
    fn table<'t>(&self, root: &'t mut Open) -> Option<&'t mut Open> {
        let name = match self {
            Section::Root => return Some(root),
            Section::Table(name) | Section::LastOf(name) => name,
        };
        match entry(root, name)? {
            Node::Header(table) => Some(table),
            Node::Tables(tables) => tables.last_mut(),
            Node::Value(_) | Node::Dotted(_) => None,
        }
    }
}

fn entry<'t>(table: &'t mut Open, key: &str) -> Option<&'t mut Node> {
    table
        .iter_mut()
        .find(|(k, _)| k == key)
        .map(|(_, node)| node)
}

/// Adds `path = value` to `table`, making the tables of a dotted key on the way.
fn insert(table: &mut Open, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("a key is missing".into());
    };
    let mut table = table;
    for key in parents {
        if entry(table, key).is_none() {
            table.push((key.clone(), Node::Dotted(Vec::new())));
        }
        table = match entry(table, key) {
            Some(Node::Dotted(inner)) => inner,
            _ => {
                return Err(format!(
                    "{key:?} is already defined; a dotted key cannot add to it"
                ));
            }
        };
    }
    if entry(table, last).is_some() {
        return Err(format!("{last:?} is defined twice"));
    }
    table.push((last.clone(), Node::Value(value)));
    Ok(())
}

fn close(table: Open) -> Table {
    table
        .into_iter()
        .map(|(key, node)| {
            let value = match node {
                Node::Value(value) => value,
                Node::Dotted(table) | Node::Header(table) => Value::Table(close(table)),
                Node::Tables(tables) => {
                    Value::Array(tables.into_iter().map(|t| Value::Table(close(t))).collect())
                }
            };
            (key, value)
        })
        .collect()
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, message: String) -> TomlError {
        let before = self.text.get(..self.pos).unwrap_or(self.text);
        TomlError {
            line: before.matches('\n').count().saturating_add(1),
            message,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn bump(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n);
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.bump(1);
        }
        found
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), TomlError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error(format!("expected {what}")))
        }
    }

    /// Spaces and tabs.
    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump(1);
        }
    }

    /// A comment, up to (not including) its line's end.
    fn skip_comment(&mut self) -> Result<(), TomlError> {
        if !self.eat(b'#') {
            return Ok(());
        }
        while let Some(byte) = self.peek() {
            match byte {
                b'\n' => break,
                b'\r' if self.rest().starts_with("\r\n") => break,
                b'\t' => {}
                0..=0x1f | 0x7f => {
                    return Err(self.error("a control character in a comment".into()));
                }
                _ => {}
            }
            self.bump(1);
        }
        Ok(())
    }

    /// A line break: LF or CRLF.
    fn eat_newline(&mut self) -> bool {
        if self.rest().starts_with("\r\n") {
            self.bump(2);
            true
        } else {
            self.eat(b'\n')
        }
    }

    /// Blanks, comments and line breaks: the space between an array's (or, in TOML 1.1, an
    /// inline table's) items.
    fn skip_space(&mut self) -> Result<(), TomlError> {
        loop {
            self.skip_blank();
            self.skip_comment()?;
            if !self.eat_newline() {
                return Ok(());
            }
        }
    }

    /// What may follow a line's key/value or header: blanks, a comment, then the line's end.
    fn end_of_line(&mut self) -> Result<(), TomlError> {
        self.skip_blank();
        self.skip_comment()?;
        if self.peek().is_none() || self.eat_newline() {
            Ok(())
        } else {
            Err(self.error("expected the end of the line".into()))
        }
    }

    /// `[key]` or `[[key]]`, of one key: the section that the following lines go into.
    fn header(&mut self, root: &mut Open) -> Result<Section, TomlError> {
        let array = self.rest().starts_with("[[");
        self.bump(if array { 2 } else { 1 });
        self.skip_blank();
        let path = self.key_path()?;
        self.skip_blank();
        self.expect(b']', "] closing the table header")?;
        if array {
            self.expect(b']', "]] closing the table header")?;
        }
        let [name] = <[String; 1]>::try_from(path).map_err(|_| {
            self.error(
                "a policy has table headers of one key only ([[accept]]); write a table inside one as key = { … }"
                    .into(),
            )
        })?;
        match (entry(root, &name), array) {
            (None, false) => root.push((name.clone(), Node::Header(Vec::new()))),
            (None, true) => root.push((name.clone(), Node::Tables(vec![Vec::new()]))),
            (Some(Node::Tables(tables)), true) => tables.push(Vec::new()),
            (Some(_), _) => {
                return Err(self.error(format!("{name:?} is defined twice")));
            }
        }
        Ok(if array {
            Section::LastOf(name)
        } else {
            Section::Table(name)
        })
    }

    fn key_value(&mut self) -> Result<(Vec<String>, Value), TomlError> {
        let path = self.key_path()?;
        self.skip_blank();
        self.expect(b'=', "= after the key")?;
        self.skip_blank();
        let value = self.value()?;
        Ok((path, value))
    }

    /// A key, dotted or not: `a`, `"a b"`, `a.'b'.c`.
    fn key_path(&mut self) -> Result<Vec<String>, TomlError> {
        let mut path = vec![self.simple_key()?];
        loop {
            let at = self.pos;
            self.skip_blank();
            if !self.eat(b'.') {
                self.pos = at;
                return Ok(path);
            }
            self.skip_blank();
            path.push(self.simple_key()?);
        }
    }

    fn simple_key(&mut self) -> Result<String, TomlError> {
        match self.peek() {
            Some(b'"') if !self.rest().starts_with("\"\"\"") => self.basic_string(),
            Some(b'\'') if !self.rest().starts_with("'''") => self.literal_string(),
            _ => {
                let length = self
                    .rest()
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                    .count();
                if length == 0 {
                    return Err(self.error("expected a key".into()));
                }
                let key = self.rest().get(..length).unwrap_or_default().to_owned();
                self.bump(length);
                Ok(key)
            }
        }
    }

    fn value(&mut self) -> Result<Value, TomlError> {
        let rest = self.rest();
        if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
            return Err(self.error("a policy has no multi-line strings".into()));
        }
        match self.peek() {
            Some(b'"') => self.basic_string().map(Value::String),
            Some(b'\'') => self.literal_string().map(Value::String),
            Some(b'[') => self.array(),
            Some(b'{') => self.inline_table(),
            Some(b't' | b'f') => self.boolean(),
            Some(b'0'..=b'9' | b'+' | b'-' | b'i' | b'n') => self.integer(),
            _ => Err(self.error("expected a value".into())),
        }
    }

    fn boolean(&mut self) -> Result<Value, TomlError> {
        for (word, value) in [("true", true), ("false", false)] {
            let after = self.rest().strip_prefix(word);
            if after.is_some_and(|after| !after.starts_with(is_bare)) {
                self.bump(word.len());
                return Ok(Value::Boolean(value));
            }
        }
        Err(self.error("expected a value".into()))
    }

    /// An integer; floats, dates and times are named as such and refused.
    fn integer(&mut self) -> Result<Value, TomlError> {
        let token: &str = {
            let rest = self.rest();
            let length = rest
                .bytes()
                .take_while(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.' | b':')
                })
                .count();
            rest.get(..length).unwrap_or_default()
        };
        let value = parse_integer(token).ok_or_else(|| {
            let float_or_date = token.contains(['.', ':'])
                || token.trim_start_matches(['+', '-']).starts_with(['i', 'n'])
                || (!token.starts_with("0x") && token.contains(['e', 'E']))
                || token.get(1..).is_some_and(|t| t.contains('-'));
            self.error(if float_or_date {
                format!("{token}: a policy has no floats, dates or times")
            } else {
                format!("{token} is not an integer (or one that does not fit in 64 bits)")
            })
        })?;
        self.bump(token.len());
        Ok(Value::Integer(value))
    }

    fn basic_string(&mut self) -> Result<String, TomlError> {
        self.bump(1);
        let mut value = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return Err(self.error("a string is not closed".into()));
            };
            self.bump(c.len_utf8());
            match c {
                '"' => return Ok(value),
                '\\' => value.push(self.escape()?),
                '\t' => value.push(c),
                '\n' | '\r' => return Err(self.error("a string is not closed".into())),
                '\0'..='\u{1f}' | '\u{7f}' => {
                    return Err(
                        self.error("a control character in a string (write it escaped)".into())
                    );
                }
                _ => value.push(c),
            }
        }
    }

    /// After a backslash: `\b \t \n \f \r \e \" \\ \xHH \uHHHH \UHHHHHHHH`.
    fn escape(&mut self) -> Result<char, TomlError> {
        let Some(c) = self.peek() else {
            return Err(self.error("a string is not closed".into()));
        };
        self.bump(1);
        let simple = match c {
            b'b' => Some('\u{8}'),
            b't' => Some('\t'),
            b'n' => Some('\n'),
            b'f' => Some('\u{c}'),
            b'r' => Some('\r'),
            b'e' => Some('\u{1b}'),
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            _ => None,
        };
        if let Some(simple) = simple {
            return Ok(simple);
        }
        let digits = match c {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => return Err(self.error(format!("unknown escape \\{}", char::from(c)))),
        };
        let hex = self.rest().get(..digits).unwrap_or_default();
        let scalar = (hex.len() == digits && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(hex, 16).ok())
            .flatten()
            .and_then(char::from_u32)
            .ok_or_else(|| {
                self.error(format!(
                    "\\{}{hex} is not a Unicode scalar value",
                    char::from(c)
                ))
            })?;
        self.bump(digits);
        Ok(scalar)
    }

    fn literal_string(&mut self) -> Result<String, TomlError> {
        self.bump(1);
        let length = self
            .rest()
            .find('\'')
            .ok_or_else(|| self.error("a string is not closed".into()))?;
        let value = self.rest().get(..length).unwrap_or_default();
        if value
            .chars()
            .any(|c| c != '\t' && (c < ' ' || c == '\u{7f}'))
        {
            return Err(self.error(
                "a literal string is not closed on its line, or holds a control character".into(),
            ));
        }
        let value = value.to_owned();
        self.bump(length.saturating_add(1));
        Ok(value)
    }

    fn array(&mut self) -> Result<Value, TomlError> {
        self.bump(1);
        let mut items = Vec::new();
        loop {
            self.skip_space()?;
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.skip_space()?;
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            self.expect(b',', ", or ] in an array")?;
        }
    }

    /// `{ key = value, … }`, over several lines and with a trailing comma as TOML 1.1 allows.
    fn inline_table(&mut self) -> Result<Value, TomlError> {
        self.bump(1);
        let mut table = Vec::new();
        loop {
            self.skip_space()?;
            if self.eat(b'}') {
                return Ok(Value::Table(close(table)));
            }
            let (path, value) = self.key_value()?;
            insert(&mut table, &path, value).map_err(|m| self.error(m))?;
            self.skip_space()?;
            if self.eat(b'}') {
                return Ok(Value::Table(close(table)));
            }
            self.expect(b',', ", or } in an inline table")?;
        }
    }
}

/// A character that may continue a bare key (and so cannot follow `true` or a number).
fn is_bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

/// TOML's integer forms: `[+-]` decimal without leading zeros, or `0x`, `0o`, `0b` digits;
/// an underscore only between two digits.
fn parse_integer(token: &str) -> Option<i64> {
    let (radix, digits, negative) = match token.get(..2) {
        Some("0x") => (16, token.get(2..)?, false),
        Some("0o") => (8, token.get(2..)?, false),
        Some("0b") => (2, token.get(2..)?, false),
        _ => match token.strip_prefix('-') {
            Some(digits) => (10, digits, true),
            None => (10, token.strip_prefix('+').unwrap_or(token), false),
        },
    };
    if radix == 10 && digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    let mut value: i64 = 0;
    let mut previous_digit = false;
    for c in digits.chars() {
        if c == '_' {
            if !previous_digit {
                return None;
            }
            previous_digit = false;
            continue;
        }
        let digit = i64::from(c.to_digit(radix)?);
        value = value.checked_mul(i64::from(radix))?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
        previous_digit = true;
    }
    previous_digit.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Value {
        Value::String(s.to_owned())
    }

    #[test]
    fn a_policy_reads_in_document_order() {
        let text = "# a comment\r\n[[accept]]\nplatform = \"tdx\" # trailing\nmin_snp_tcb = { snp = 22, microcode = 0xd5 }\nallow_tcb = [\n  'OutOfDate', # one\n  \"SWHardeningNeeded\",\n]\n\n[[accept]]\n\"quoted key\" = true\na . b = -1_000\n";
        let root = parse(text).unwrap();
        let accept = Value::Array(vec![
            Value::Table(vec![
                ("platform".into(), string("tdx")),
                (
                    "min_snp_tcb".into(),
                    Value::Table(vec![
                        ("snp".into(), Value::Integer(22)),
                        ("microcode".into(), Value::Integer(0xd5)),
                    ]),
                ),
                (
                    "allow_tcb".into(),
                    Value::Array(vec![string("OutOfDate"), string("SWHardeningNeeded")]),
                ),
            ]),
            Value::Table(vec![
                ("quoted key".into(), Value::Boolean(true)),
                (
                    "a".into(),
                    Value::Table(vec![("b".into(), Value::Integer(-1000))]),
                ),
            ]),
        ]);
        assert_eq!(root, vec![("accept".into(), accept)]);
    }

    #[test]
    fn integers_and_escapes_are_toml_s() {
        for (token, value) in [
            ("0", Some(0)),
            ("+17", Some(17)),
            ("-0", Some(0)),
            ("1_000", Some(1000)),
            ("0xDEAD_beef", Some(0xdead_beef)),
            ("0o17", Some(15)),
            ("0b1010", Some(10)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("01", None),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("0x", None),
            ("+0x1", None),
            ("1.5", None),
        ] {
            assert_eq!(parse_integer(token), value, "{token}");
        }
        let root = parse(r#"s = "\"\\\b\t\n\f\r\e\x41\u00e9\U0001F600""#).unwrap();
        assert_eq!(
            root,
            vec![("s".into(), string("\"\\\u{8}\t\n\u{c}\r\u{1b}Aé😀"))]
        );
    }

    #[test]
    fn what_no_policy_holds_is_refused_naming_the_line() {
        for (text, message) in [
            (
                "a = 1.5",
                "TOML line 1: 1.5: a policy has no floats, dates or times",
            ),
            (
                "\na = 1979-05-27",
                "TOML line 2: 1979-05-27: a policy has no floats, dates or times",
            ),
            (
                "a = inf",
                "TOML line 1: inf: a policy has no floats, dates or times",
            ),
            (
                "a = \"\"\"x\"\"\"",
                "TOML line 1: a policy has no multi-line strings",
            ),
            (
                "[accept.min_snp_tcb]",
                "TOML line 1: a policy has table headers of one key only ([[accept]]); write a table inside one as key = { … }",
            ),
            ("a = 1\na = 2", "TOML line 2: \"a\" is defined twice"),
            (
                "a = { b = 1 }\na.c = 2",
                "TOML line 2: \"a\" is already defined; a dotted key cannot add to it",
            ),
            ("a = []\n[[a]]", "TOML line 2: \"a\" is defined twice"),
            (
                "a = \"x\" b = 1",
                "TOML line 1: expected the end of the line",
            ),
            ("a = \"x", "TOML line 1: a string is not closed"),
            (
                "a = 'x\n'",
                "TOML line 1: a literal string is not closed on its line, or holds a control character",
            ),
            ("a = \"\\q\"", "TOML line 1: unknown escape \\q"),
            (
                "a = \"\\uD800\"",
                "TOML line 1: \\uD800 is not a Unicode scalar value",
            ),
            ("a = [1 2]", "TOML line 1: expected , or ] in an array"),
            ("a = truex", "TOML line 1: expected a value"),
            ("= 1", "TOML line 1: expected a key"),
            (
                "a = 1 # \u{1}",
                "TOML line 1: a control character in a comment",
            ),
        ] {
            assert_eq!(
                parse(text).map_err(|e| e.to_string()),
                Err(message.to_owned()),
                "{text:?}"
            );
        }
    }

    /// A value in a form both readers map to: tables by key, whatever their order.
    #[derive(Debug, PartialEq)]
    enum Canonical {
        String(String),
        Integer(i64),
        Boolean(bool),
        Array(Vec<Canonical>),
        Table(std::collections::BTreeMap<String, Canonical>),
        /// What this reader never produces (floats, dates).
        Other(String),
    }

    fn ours(value: &Value) -> Canonical {
        match value {
            Value::String(s) => Canonical::String(s.clone()),
            Value::Integer(i) => Canonical::Integer(*i),
            Value::Boolean(b) => Canonical::Boolean(*b),
            Value::Array(items) => Canonical::Array(items.iter().map(ours).collect()),
            Value::Table(table) => {
                Canonical::Table(table.iter().map(|(k, v)| (k.clone(), ours(v))).collect())
            }
        }
    }

    fn theirs(value: &toml::Value) -> Canonical {
        match value {
            toml::Value::String(s) => Canonical::String(s.clone()),
            toml::Value::Integer(i) => Canonical::Integer(*i),
            toml::Value::Boolean(b) => Canonical::Boolean(*b),
            toml::Value::Array(items) => Canonical::Array(items.iter().map(theirs).collect()),
            toml::Value::Table(table) => {
                Canonical::Table(table.iter().map(|(k, v)| (k.clone(), theirs(v))).collect())
            }
            other => Canonical::Other(format!("{other:?}")),
        }
    }

    /// Reads `text` with both; whatever this reader accepts, `toml` accepts with the same
    /// value, and what `toml` accepts this one refuses only as something no policy holds.
    /// Returns whether this reader accepted it.
    fn compare(text: &str) -> bool {
        let mine = parse(text);
        let toml = text.parse::<toml::Table>();
        match (&mine, &toml) {
            (Ok(mine), Ok(toml)) => {
                let mine =
                    Canonical::Table(mine.iter().map(|(k, v)| (k.clone(), ours(v))).collect());
                let toml =
                    Canonical::Table(toml.iter().map(|(k, v)| (k.clone(), theirs(v))).collect());
                assert_eq!(mine, toml, "{text:?}");
                true
            }
            (Ok(mine), Err(e)) => panic!("{text:?}: read as {mine:?}, toml refuses it: {e}"),
            (Err(e), Ok(_)) => {
                assert!(
                    e.message.contains("a policy has"),
                    "{text:?}: toml reads it, this reader says {e}"
                );
                false
            }
            (Err(_), Err(_)) => false,
        }
    }

    #[test]
    fn reads_what_the_toml_crate_reads() {
        for text in [
            "",
            "\u{feff}a = 1",
            "a=1\r\nb='x'",
            "a = 1 \t# c\n\n# d\n",
            "[[accept]]\n[[accept]]\nx = 1",
            "[ accept ]\nx = 1",
            "[[ 'accept' ]]\nx = 1",
            "[a]\n[a]",
            "a.b = 1\n[a]",
            "a.b = 1\na.c = 2",
            "a = { b.c = 1, b.d = 2 }",
            "a = {\n b = 1, # c\n c = [1,\n2,],\n}",
            "a = { }",
            "a = {b = 1,}",
            "a = [ [ 1 ], [ 'x', { y = true } ] ]",
            "a = [,]",
            "a = [1,,2]",
            "\"\" = 1",
            "'a.b' = 1",
            "a = \"\\u00E9\\x7f\"",
            "a = '\\u00E9'",
            "a = \"\u{7f}\"",
            "a = \"\t\"",
            "a = 1979-05-27T07:32:00Z",
            "a = 07:32:00",
            "a = 1e3",
            "a = +nan",
            "a = 0xFFFFFFFFFFFFFFFF",
            "a = -0x1",
            "a = 00",
            "a = 1_",
            "a = tru",
            "a = true1",
            "a = 1\rb = 2",
            "a = \"x\"\"y\"",
            "a.'b c'.\"d\" = 1",
            "a . b . c = 'd'",
            "1 = 2",
            "-_ = 3",
            "a = [\n# only a comment\n]",
            "[[a]]\nb.c = 1\n[[a]]\nb.d = 2",
        ] {
            compare(text);
        }
    }

    /// Random documents of the pieces a policy is made of, mistakes included.
    #[test]
    fn random_documents_read_as_the_toml_crate_reads_them() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % u64::try_from(n).unwrap()).unwrap()
        };
        const KEYS: [&str; 10] = [
            "platform",
            "a",
            "min_snp_tcb",
            "\"q k\"",
            "'l.k'",
            "a.b",
            "a . c",
            "x-y_1",
            "\"\"",
            "1",
        ];
        const SCALARS: [&str; 22] = [
            "\"tdx\"",
            "'lit'",
            "\"\\u0041\\n\"",
            "\"\\x41\"",
            "\"é\"",
            "''",
            "0",
            "-17",
            "+0",
            "0x1F",
            "0o7",
            "0b11",
            "1_000",
            "true",
            "false",
            "1.0",
            "1979-05-27",
            "01",
            "1__2",
            "\"\\q\"",
            "nan",
            "9223372036854775808",
        ];
        const GAPS: [&str; 6] = ["", " ", "\t", "\n", " # c\n", "\r\n"];
        fn value(next: &mut dyn FnMut(usize) -> usize, depth: usize) -> String {
            match next(if depth > 2 { 3 } else { 5 }) {
                0..=2 => SCALARS[next(SCALARS.len())].to_owned(),
                3 => {
                    let items: Vec<String> = (0..next(4)).map(|_| value(next, depth + 1)).collect();
                    let gap = GAPS[next(GAPS.len())];
                    let trailing = if next(2) == 0 { "," } else { "" };
                    format!("[{gap}{}{trailing}{gap}]", items.join(&format!(",{gap}")))
                }
                _ => {
                    let items: Vec<String> = (0..next(4))
                        .map(|_| format!("{} = {}", KEYS[next(KEYS.len())], value(next, depth + 1)))
                        .collect();
                    let gap = [" ", "", "\n"][next(3)];
                    let trailing = if next(3) == 0 { "," } else { "" };
                    format!("{{{gap}{}{trailing}{gap}}}", items.join(&format!(",{gap}")))
                }
            }
        }
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..next(6) {
                match next(6) {
                    0 => text
                        .push_str(["[[accept]]", "[accept]", "[[a.b]]", "[[ accept ]]"][next(4)]),
                    1 => text.push_str("# comment"),
                    _ => {
                        let key = KEYS[next(KEYS.len())];
                        text.push_str(&format!("{key} = {}", value(&mut next, 0)));
                    }
                }
                text.push_str(["\n", "\r\n", " \n", " # end\n"][next(4)]);
            }
            // Now and then a mistake: a byte dropped.
            if next(5) == 0 && !text.is_empty() {
                let at = next(text.len());
                if text.is_char_boundary(at) && text.is_char_boundary(at + 1) {
                    text.remove(at);
                }
            }
            if compare(&text) {
                accepted += 1;
            }
        }
        assert!(accepted > 2_000, "only {accepted} documents were read");
    }
}
