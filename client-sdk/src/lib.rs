//! Shroud client.
