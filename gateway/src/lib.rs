//! Shroud gateway.
