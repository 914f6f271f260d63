//! Every decoder of the local protocol (handle <-> node) must reject
//! arbitrary bytes with an error, never panic, and round-trip what it
//! accepts: a request re-encodes to the very same bytes (the encoding is
//! canonical); a reply and a callback decode again to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use udlm::proto::{decode_reply, encode_reply, Callback, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        let bytes = req.encode();
        assert_eq!(bytes, data);
        assert_eq!(Request::decode(&bytes).as_ref(), Ok(&req));
    }
    if let Ok(reply) = decode_reply(data) {
        assert_eq!(decode_reply(&encode_reply(&reply)), Ok(reply));
    }
    if let Ok(cb) = Callback::decode(data) {
        assert_eq!(Callback::decode(&cb.encode()), Ok(cb));
    }
});
