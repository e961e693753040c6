//! What the end-to-end harnesses (`shroud-load`, `shroud-soak`) share: starting the release
//! gateway from a configuration file, and their error type.

pub mod error;
pub mod gateway;
