//! Framing + decoding + multi-line joining over arbitrary bytes; the body
//! and its contract are in sluice's src/fuzz_harness.rs, shared with the
//! regression test that replays past findings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sluice::testing::frame_decode_join(data);
});
