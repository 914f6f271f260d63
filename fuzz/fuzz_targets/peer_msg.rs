//! The node-to-node lock and membership messages: arbitrary bytes give an
//! error, never a panic; what decodes re-encodes to the very same bytes (the
//! encoding is canonical) and decodes again to the same message; membership
//! messages, and only they, carry no lockspace.
#![no_main]
use libfuzzer_sys::fuzz_target;
use udlm::node::peer::PeerMsg;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = PeerMsg::decode(data) {
        let bytes = m.encode();
        assert_eq!(bytes, data);
        assert_eq!(PeerMsg::decode(&bytes).as_ref(), Ok(&m));
        assert_eq!(m.lockspace().is_empty(), m.is_membership());
    }
});
