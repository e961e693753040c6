//! PEM (RFC 7468) blocks to DER: what the pinned roots and user-supplied certificates come as.
//!
//! Our own few lines over the `base64` crate rather than `x509-parser`'s PEM reader, which links
//! a second base64 implementation (`data-encoding`) into the browser bundle. Lenient where users
//! are (line length, CRLF, no line breaks at all), strict where it matters: a block must end with
//! the `END` line of its own label, and its body must be valid base64.

use base64::Engine as _;

/// Most PEM blocks read from one input: the callers accept at most a handful of certificates.
const MAX_BLOCKS: usize = 16;

/// One decoded block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PemBlock {
    /// The label, e.g. `CERTIFICATE`.
    pub(crate) label: String,
    /// The decoded contents.
    pub(crate) der: Vec<u8>,
}

/// Every PEM block of `text`, in order; text outside the blocks is ignored.
pub(crate) fn decode_all(text: &[u8]) -> Result<Vec<PemBlock>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "PEM text is not UTF-8".to_owned())?;
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        if blocks.len() == MAX_BLOCKS {
            return Err(format!("more than {MAX_BLOCKS} PEM blocks"));
        }
        let after = rest.get(start + "-----BEGIN ".len()..).unwrap_or_default();
        let (label, body) = after
            .split_once("-----")
            .ok_or_else(|| "unterminated PEM BEGIN line".to_owned())?;
        let end_line = format!("-----END {label}-----");
        let (encoded, tail) = body
            .split_once(end_line.as_str())
            .ok_or_else(|| format!("PEM block {label} has no {end_line} line"))?;
        let compact: String = encoded.split_ascii_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| format!("PEM block {label}: {e}"))?;
        blocks.push(PemBlock {
            label: label.to_owned(),
            der,
        });
        rest = tail;
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_decode_in_order_and_bad_ones_are_errors() {
        let text = b"junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\r\n\
                     -----BEGIN X-----\r\nBAU=\r\n-----END X-----\n";
        let blocks = decode_all(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(blocks[0].der, [0, 1, 2, 3]);
        assert_eq!(blocks[1].der, [4, 5]);
        assert!(decode_all(b"no pem here").unwrap().is_empty());
        assert!(decode_all(b"-----BEGIN A-----\nAAAA\n-----END B-----").is_err());
        assert!(decode_all(b"-----BEGIN A-----\n!!!!\n-----END A-----").is_err());
        assert!(decode_all(b"-----BEGIN A").is_err());
        assert!(decode_all(&[0xff]).is_err());
    }
}
