//! The binary HTTP messages (RFC 9292) that travel inside OHTTP: a `POST /{chain}` with
//! `content-type: application/json` and a `date` header, and the gateway's response, padded.

use std::io::Cursor;
use std::time::{Duration, SystemTime};

use bhttp::{Message, Mode, StatusCode};

use super::OhttpError;

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The path, e.g. `/eth`.
    pub path: String,
    /// The `content-type` header, when present.
    pub content_type: Option<String>,
    /// The `date` header as seconds since the Unix epoch, when present and well-formed.
    pub date: Option<u64>,
    /// The body.
    pub body: Vec<u8>,
}

/// A decoded response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryResponse {
    /// The status code.
    pub status: u16,
    /// The `content-type` header, when present.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Encodes `POST {path}` with a JSON `body` and `date` = `now_unix_secs` (known-length form).
pub fn encode_request(path: &str, body: &[u8], now_unix_secs: u64) -> Result<Vec<u8>, OhttpError> {
    let mut message = Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        Vec::new(),
        path.as_bytes().to_vec(),
    );
    message.put_header("content-type", "application/json");
    message.put_header("date", http_date(now_unix_secs));
    message.write_content(body);
    let mut out = Vec::with_capacity(body.len() + 64);
    message
        .write_bhttp(Mode::KnownLength, &mut out)
        .map_err(|e| OhttpError::Message(e.to_string()))?;
    Ok(out)
}

/// Decodes a request; trailing padding is ignored.
pub fn decode_request(bytes: &[u8]) -> Result<BinaryRequest, OhttpError> {
    let message = read(bytes)?;
    let control = message.control();
    let (Some(method), Some(path)) = (control.method(), control.path()) else {
        return Err(OhttpError::Message("not a request".into()));
    };
    Ok(BinaryRequest {
        method: String::from_utf8_lossy(method).into_owned(),
        path: String::from_utf8_lossy(path).into_owned(),
        content_type: header(&message, b"content-type"),
        date: header(&message, b"date").and_then(|d| parse_http_date(&d)),
        body: message.content().to_vec(),
    })
}

/// Encodes a response, then appends zero bytes (RFC 9292 §3.8 padding) up to the smallest of
/// `buckets` that fits; larger responses are left unpadded.
pub fn encode_response(
    status: u16,
    content_type: &str,
    body: &[u8],
    buckets: &[usize],
) -> Result<Vec<u8>, OhttpError> {
    let status = StatusCode::try_from(status).map_err(|e| OhttpError::Message(e.to_string()))?;
    let mut message = Message::response(status);
    message.put_header("content-type", content_type);
    message.write_content(body);
    let mut out = Vec::with_capacity(body.len() + 32);
    message
        .write_bhttp(Mode::KnownLength, &mut out)
        .map_err(|e| OhttpError::Message(e.to_string()))?;
    if let Some(&bucket) = buckets.iter().filter(|&&b| b >= out.len()).min() {
        out.resize(bucket, 0);
    }
    Ok(out)
}

/// Decodes a response; trailing padding is ignored.
pub fn decode_response(bytes: &[u8]) -> Result<BinaryResponse, OhttpError> {
    let message = read(bytes)?;
    let status = message
        .control()
        .status()
        .ok_or_else(|| OhttpError::Message("not a response".into()))?;
    Ok(BinaryResponse {
        status: status.code(),
        content_type: header(&message, b"content-type"),
        body: message.content().to_vec(),
    })
}

/// IMF-fixdate of a Unix time, the `date` header format.
pub fn http_date(unix_secs: u64) -> String {
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(unix_secs))
}

/// Seconds since the Unix epoch of an HTTP date.
pub fn parse_http_date(value: &str) -> Option<u64> {
    httpdate::parse_http_date(value)
        .ok()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

fn read(bytes: &[u8]) -> Result<Message, OhttpError> {
    let mut cursor = Cursor::new(bytes);
    Message::read_bhttp(&mut cursor).map_err(|e| OhttpError::Message(e.to_string()))
}

fn header(message: &Message, name: &[u8]) -> Option<String> {
    message
        .header()
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
