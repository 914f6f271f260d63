//! The node-to-node lock messages: arbitrary bytes give an error, never a
//! panic; what decodes re-encodes to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use udlm::node::peer::PeerMsg;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = PeerMsg::decode(data) {
        assert_eq!(PeerMsg::decode(&m.encode()), Ok(m));
    }
});
