//! Hashers for tables looked up on every request, where SipHash costs more than the rest
//! of the lookup: [`Fnv`] (FNV-1a) for short names (model groups, deployments by id,
//! metric handles by tenant) and [`Prehashed`] for keys that already are hashes or
//! digests (pooled connections by peer hash, API keys by SHA-256). Only for tables whose
//! keys come from the config or from the gateway itself: requests never insert keys of
//! their choosing, so keys chosen to collide cannot grow them.

use std::hash::Hasher;

/// The FNV-1a 64-bit hasher.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// For keys that are already uniformly distributed (a hash, a digest): their first eight
/// bytes are the hash.
#[derive(Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(b);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
    fn write_usize(&mut self, n: usize) {
        // Slices and arrays write their length first: a constant for fixed-size keys.
        self.0 ^= n as u64;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_vectors() {
        let h = |s: &[u8]| {
            let mut f = Fnv::default();
            f.write(s);
            f.finish()
        };
        assert_eq!(h(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn prehashed_keys_hash_to_themselves() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let b = BuildHasherDefault::<Prehashed>::default();
        assert_eq!(b.hash_one(0xdead_beef_u64), 0xdead_beef);
        let digest = [7u8; 32];
        assert_eq!(b.hash_one(digest), u64::from_le_bytes([7; 8]) ^ 32);
        assert_ne!(b.hash_one([8u8; 32]), b.hash_one(digest));
    }
}
