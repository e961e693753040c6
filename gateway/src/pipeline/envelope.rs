//! The JSON-RPC 2.0 envelope, written in one place for every message the gateway writes by hand:
//! the upstream request (`strip`), an answer under the client's exact id (`assemble`), and a
//! gateway error (`respond`). Hand-written so ids and results keep their exact bytes.

/// Every message starts `{"jsonrpc":"2.0","id":`; the id's bytes follow.
pub(crate) const OPEN: &[u8] = br#"{"jsonrpc":"2.0","id":"#;

/// Every message ends with `}`.
pub(crate) const CLOSE: &[u8] = b"}";

/// Appends the start of a message with id `id` (JSON text) and member `member`, up to the
/// member's value: `{"jsonrpc":"2.0","id":ID,"MEMBER":`.
pub(crate) fn open(out: &mut Vec<u8>, id: &[u8], member: &str) {
    out.extend_from_slice(OPEN);
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(member.as_bytes());
    out.extend_from_slice(b"\":");
}

/// The bytes [`open`] and [`CLOSE`] add around a value.
pub(crate) fn overhead(id: &[u8], member: &str) -> usize {
    OPEN.len() + id.len() + member.len() + br#","":"#.len() + CLOSE.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_is_what_open_and_close_write() {
        let mut out = Vec::new();
        open(&mut out, b"1.50", "result");
        out.extend_from_slice(CLOSE);
        assert_eq!(out, br#"{"jsonrpc":"2.0","id":1.50,"result":}"#);
        assert_eq!(out.len(), overhead(b"1.50", "result"));
    }
}
