//! Framing + decoding + multi-line joining over arbitrary bytes; the body
//! and its contract are in `sluice::fuzz_harness`, shared with the
//! regression test that replays past findings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sluice::fuzz_harness::frame_decode_join(data);
});
