//! Test-only fault injection, compiled only with the `test-faults` feature (the production
//! wasm has the no-op versions).

#[cfg(feature = "test-faults")]
mod enabled {
    use std::cell::Cell;

    thread_local! {
        static TAMPER: Cell<bool> = const { Cell::new(false) };
        static API_VERSION: Cell<Option<u32>> = const { Cell::new(None) };
    }

    fn controller_only() {
        if !ic_cdk::api::is_controller(&ic_cdk::api::msg_caller()) {
            ic_cdk::trap("test faults: controllers only");
        }
    }

    /// While on, every exported chunk has its first byte flipped.
    #[ic_cdk::update]
    fn test_tamper_chunks(on: bool) {
        controller_only();
        TAMPER.with(|t| t.set(on));
    }

    /// Makes the factory expect another capsule API version from personal canisters.
    #[ic_cdk::update]
    fn test_expect_api_version(version: Option<u32>) {
        controller_only();
        API_VERSION.with(|v| v.set(version));
    }

    pub fn tamper(bytes: &mut [u8]) {
        if TAMPER.with(|t| t.get())
            && let Some(b) = bytes.first_mut()
        {
            *b ^= 0xff;
        }
    }

    pub fn expected_api_version() -> u32 {
        API_VERSION
            .with(|v| v.get())
            .unwrap_or(capsule::API_VERSION)
    }
}

#[cfg(feature = "test-faults")]
pub use enabled::{expected_api_version, tamper};

#[cfg(not(feature = "test-faults"))]
pub fn tamper(_bytes: &mut [u8]) {}

#[cfg(not(feature = "test-faults"))]
pub fn expected_api_version() -> u32 {
    capsule::API_VERSION
}
