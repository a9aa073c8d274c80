//! Content-addressed blob store; see `hash` for the hashing scheme.
pub mod hash;
