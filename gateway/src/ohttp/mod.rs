//! The OHTTP gateway (DESIGN §4.3): key configurations generated in the enclave and bound by the
//! certificate's `ohttp-keys` claim, `message/ohttp-req` opened and relayed through the same
//! pipeline as plain requests, answers sealed as `message/ohttp-res`, padded to size buckets.
//!
//! * [`keys`]: the key ring (current and previous generation), rotated with the certificate;
//! * [`handle`]: one encapsulated request, from ciphertext to ciphertext;
//! * [`cors`]: the headers that let a page on any origin call the gateway.

pub(crate) mod cors;
pub(crate) mod handle;
pub(crate) mod keys;

pub(crate) use keys::OhttpState;
