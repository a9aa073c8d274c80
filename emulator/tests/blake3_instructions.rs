//! Metering check against a known workload: BLAKE3 of 8 MiB in wasm, as the IC counts it
//! (about 36 instructions per byte portable, about 14 with `wasm32_simd` and `+simd128`).
//! Prints the measured figures.

use candid::Principal;
use emulator::canisters::{BuildSpec, build};
use emulator::pocket_ic::PocketIc;

const LEN: u64 = 8 * 1024 * 1024;

fn measure(spec: &BuildSpec) -> (u64, Vec<u8>) {
    let wasm = build(spec).expect("build blake3_bench").to_vec();
    let pic = PocketIc::new();
    let id = pic.create_canister();
    pic.install_canister(id, wasm, candid::encode_args(()).unwrap(), None);
    pic.update_candid(id, Principal::anonymous(), "bench", (LEN,))
        .unwrap()
}

#[test]
fn blake3_instructions_per_byte_match_the_ic() {
    let portable = BuildSpec {
        package: "blake3_bench".into(),
        ..Default::default()
    };
    let simd = BuildSpec {
        package: "blake3_bench".into(),
        features: vec!["simd".into()],
        rustflags: Some("-C target-feature=+simd128".into()),
    };
    let (p_instr, p_hash) = measure(&portable);
    let (s_instr, s_hash) = measure(&simd);
    assert_eq!(p_hash, s_hash, "both builds compute the same hash");
    assert_eq!(p_hash.len(), 32);
    let p = p_instr as f64 / LEN as f64;
    let s = s_instr as f64 / LEN as f64;
    println!(
        "BLAKE3 of 8 MiB: portable {p_instr} instructions ({p:.2}/byte), simd128 {s_instr} instructions ({s:.2}/byte)"
    );
    assert!(
        (25.0..50.0).contains(&p),
        "portable {p:.2} instructions/byte"
    );
    assert!((8.0..22.0).contains(&s), "simd {s:.2} instructions/byte");
}
