//! One table of hosts, loopback or not, for the two `is_loopback_host` of the gateway (plain
//! `http://` upstreams) and of the SDK (plain HTTP to a local proxy or relay). Each side keeps
//! its own function, since neither crate may depend on the other; both are tested against this
//! table, so they cannot drift apart.

/// `(host as it appears in a URL authority, is it loopback)`.
pub const LOOPBACK_CASES: &[(&str, bool)] = &[
    ("localhost", true),
    ("LOCALHOST", true),
    ("LocalHost", true),
    ("127.0.0.1", true),
    ("127.8.9.10", true),
    ("127.255.255.254", true),
    ("[::1]", true),
    ("::1", true),
    ("[0:0:0:0:0:0:0:1]", true),
    // Brackets are for IPv6 literals only: a bracketed name is not a host.
    ("[localhost]", false),
    ("example.com", false),
    ("localhost.example.com", false),
    ("localhost.", false),
    ("10.0.0.1", false),
    ("128.0.0.1", false),
    ("0.0.0.0", false),
    ("[::2]", false),
    ("[::]", false),
    ("::ffff:127.0.0.1", false),
    ("", false),
    ("[]", false),
];
