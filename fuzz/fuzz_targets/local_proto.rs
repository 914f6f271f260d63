//! Every decoder of the local protocol (handle <-> node) must reject
//! arbitrary bytes with an error, never panic, and round-trip what it accepts.
#![no_main]
use libfuzzer_sys::fuzz_target;
use udlm::proto::{decode_reply, Callback, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        assert_eq!(Request::decode(&req.encode()).as_ref(), Ok(&req));
    }
    let _ = decode_reply(data);
    if let Ok(cb) = Callback::decode(data) {
        assert_eq!(Callback::decode(&cb.encode()), Ok(cb));
    }
});
