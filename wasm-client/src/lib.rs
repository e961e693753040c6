//! Shroud wasm.
