//! A TLS server that counts the application bytes it receives after the handshake.
