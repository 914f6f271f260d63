//! Randomness and the HMAC-SHA256 challenge-response of the handshake.
//!
//! Each side of a new connection sends a random nonce in its HELLO; the
//! other proves it holds the cluster key by returning
//! `HMAC-SHA256(key, nonce || node_id (u32 LE) || cluster name || incarnation (u64 LE))`
//! where node_id and incarnation are the prover's own. Binding the prover's
//! id stops a reflected answer from passing as another node's, and the
//! fresh nonce stops replays.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Read;

use super::frame::{MAC_LEN, NONCE_LEN};

type HmacSha256 = Hmac<Sha256>;

/// Fill `buf` with unpredictable bytes. The kernel's generator is the
/// source; should /dev/urandom be unreadable (a stripped container), fall
/// back to the randomly keyed SipHash of std mixed with the time, the pid
/// and a counter: weaker, but nonces then still never repeat.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(buf).is_ok() {
            return;
        }
    }
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in buf.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

pub(crate) fn random_nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    random_bytes(&mut n);
    n
}

/// A fresh incarnation number for this process; never 0 (0 reads as "none").
pub(crate) fn new_incarnation() -> u64 {
    loop {
        let mut b = [0u8; 8];
        random_bytes(&mut b);
        let v = u64::from_le_bytes(b);
        if v != 0 {
            return v;
        }
    }
}

fn keyed(
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    node_id: u32,
    cluster: &[u8],
    incarnation: u64,
) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail; the fallback
    // keeps the function total without an unwrap.
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => <HmacSha256 as Mac>::new(&Default::default()),
    };
    m.update(nonce);
    m.update(&node_id.to_le_bytes());
    m.update(cluster);
    m.update(&incarnation.to_le_bytes());
    m
}

/// The proof a node with `node_id` and `incarnation` returns for `nonce`.
pub(crate) fn mac(
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    node_id: u32,
    cluster: &[u8],
    incarnation: u64,
) -> [u8; MAC_LEN] {
    let tag = keyed(key, nonce, node_id, cluster, incarnation)
        .finalize()
        .into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&tag);
    out
}

/// Check a peer's proof in constant time.
pub(crate) fn verify(
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    node_id: u32,
    cluster: &[u8],
    incarnation: u64,
    tag: &[u8],
) -> bool {
    keyed(key, nonce, node_id, cluster, incarnation)
        .verify_slice(tag)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_binds_every_input() {
        let n = [7u8; NONCE_LEN];
        let base = mac(b"key", &n, 1, b"c", 9);
        assert!(verify(b"key", &n, 1, b"c", 9, &base));
        assert!(!verify(b"other", &n, 1, b"c", 9, &base));
        assert!(!verify(b"key", &[8u8; NONCE_LEN], 1, b"c", 9, &base));
        assert!(!verify(b"key", &n, 2, b"c", 9, &base));
        assert!(!verify(b"key", &n, 1, b"d", 9, &base));
        assert!(!verify(b"key", &n, 1, b"c", 10, &base));
        assert!(!verify(b"key", &n, 1, b"c", 9, &base[..31]));
    }

    #[test]
    fn randomness_differs() {
        assert_ne!(random_nonce(), random_nonce());
        assert_ne!(new_incarnation(), new_incarnation());
    }
}
