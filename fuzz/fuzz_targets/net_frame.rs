//! Fuzzes the node-to-node wire decoder (`udlm::net::frame`): any bytes, read
//! as a sequence of frames by both the slice decoder and the stream reader,
//! must be accepted or rejected with an error, never a panic and never an
//! allocation larger than the bound of the frame type; every control payload
//! that decodes must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    udlm::net::frame::fuzz_decode(data);
});
