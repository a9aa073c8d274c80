//! Typed errors of the emulator's own API (not canister rejects: those are [`crate::RejectResponse`]).

use candid::Principal;

/// Errors of the emulator itself: bad modules, unknown canisters, wrong use of the API.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The module cannot be decoded, decompressed or rewritten.
    #[error("invalid wasm module: {0}")]
    InvalidWasm(String),
    /// The module imports a function the emulator does not provide.
    #[error("module imports `{module}.{name}`, which the emulator does not provide")]
    UnknownImport {
        /// Import module (usually `ic0`).
        module: String,
        /// Function name.
        name: String,
    },
    /// wasmtime failed to compile or instantiate the module.
    #[error("wasm engine error: {0}")]
    Engine(String),
    /// No canister with this id exists.
    #[error("canister {0} not found")]
    CanisterNotFound(Principal),
    /// An ingress message id is unknown.
    #[error("unknown message id {0}")]
    UnknownMessage(u64),
    /// `await_call` gave up: the message did not complete within the round budget.
    #[error("message {0} did not complete within {1} rounds")]
    NotCompleted(u64, u64),
    /// Building a test canister failed.
    #[error("building canister `{0}` failed: {1}")]
    Build(String, String),
    /// A saved state cannot be written or read.
    #[error("state: {0}")]
    State(String),
    /// I/O error (module cache, builds).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
