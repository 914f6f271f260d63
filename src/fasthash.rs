//! The hash of udlm's in-memory tables: FNV-1a over 8-byte words with a
//! final mix. SipHash, std's default, was a third of the time of a lock call
//! in embedded mode (perf), spent on lockspace names, lock ids and resource
//! names that each call looks up several times. This hash has no key: keys
//! that collide on purpose slow a table down. Every table it serves is
//! bounded (lockspaces, handles, locks per lockspace), and who can name
//! resources is who the lockspace's mode lets in, as for the engine's table.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// `BuildHasher` of [`FastMap`] and of the engine's resource table.
#[derive(Clone, Copy, Default)]
pub struct FastHash;

pub struct FastHasher(u64);

/// A `HashMap` with [`FastHash`].
pub type FastMap<K, V> = HashMap<K, V, FastHash>;

impl BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.0 =
                (self.0 ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(0x0100_0000_01b3);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0 ^ u64::from(v)).wrapping_mul(0x0100_0000_01b3);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x0100_0000_01b3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_alike_and_near_keys_spread() {
        let h = |b: &[u8]| {
            let mut s = FastHash.build_hasher();
            s.write(b);
            s.finish()
        };
        assert_eq!(h(b"lockspace"), h(b"lockspace"));
        let mut seen = std::collections::HashSet::new();
        for i in 0u32..10_000 {
            let mut s = FastHash.build_hasher();
            s.write_u32(i);
            // The low 12 bits (a table's buckets) spread over small ids.
            seen.insert(s.finish() & 0xfff);
        }
        assert!(seen.len() > 3_000, "{} distinct buckets", seen.len());
    }
}
