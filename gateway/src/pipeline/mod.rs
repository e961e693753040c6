//! The relay pipeline (DESIGN §5): `parse → forward → respond` in this release; `policy`,
//! `strip`, `cache`, `select` and `restore` slot in between as they arrive.
//!
//! The order is enforced by types: [`forward::forward`] only takes a [`parse::SanitizedCall`],
//! which only [`parse::parse`] builds, from the canonical re-serialisation of the client's JSON.
//! No client byte reaches an upstream any other way.

pub(crate) mod forward;
pub(crate) mod parse;
pub(crate) mod respond;

pub(crate) use respond::PipelineError;
