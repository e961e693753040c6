//! A loopback JSON-RPC upstream that records every request it receives.
