//! Shroud benches.
