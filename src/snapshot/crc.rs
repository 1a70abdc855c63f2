//! Combining CRC-32C values of adjacent byte runs without re-reading the bytes.
//!
//! For CRCs with equal pre- and post-conditioning (CRC-32C: init = xorout = 0xFFFFFFFF),
//! `crc(A || B) = crc(A) · x^(8·|B|) mod P  ⊕  crc(B)`, computed in the bit-reflected domain.
//! The multiplier depends only on `|B|`, so [`Combiner`] caches it per length: the tree walk
//! combines one CRC per leaf page, and leaf lengths repeat a lot.

/// CRC-32C (Castagnoli) polynomial, bit-reflected.
const POLY: u32 = 0x82F6_3B78;
/// `x^0` in the reflected representation.
const ONE: u32 = 1 << 31;

/// `a · b mod P` for reflected polynomials.
fn mul(a: u32, mut b: u32) -> u32 {
    let mut product = 0u32;
    let mut bit = ONE;
    while bit != 0 {
        if a & bit != 0 {
            product ^= b;
        }
        bit >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    product
}

/// Slots of the direct-mapped multiplier cache (indexed by length modulo this).
const CACHE_SLOTS: usize = 4096;

/// Caches `x^(8n) mod P` per length `n`.
pub struct Combiner {
    /// `x^(2^k) mod P` for k = 0..64.
    powers: [u32; 64],
    /// Direct-mapped: slot `n % CACHE_SLOTS` holds `(n, x^(8n) mod P)` for the last `n` seen
    /// there (no hashing on the walk's per-leaf path; a collision only costs a recompute).
    cache: Box<[(u64, u32)]>,
}

impl Default for Combiner {
    fn default() -> Self {
        let mut powers = [0u32; 64];
        let mut p = ONE >> 1; // x^1
        for slot in &mut powers {
            *slot = p;
            p = mul(p, p);
        }
        Combiner {
            powers,
            // Length 0 never reaches the cache (`combine` returns early), so (0, _) is "empty".
            cache: vec![(0, 0); CACHE_SLOTS].into_boxed_slice(),
        }
    }
}

impl Combiner {
    /// `x^(8n) mod P`.
    fn shift(&mut self, n: u64) -> u32 {
        let slot = (n % CACHE_SLOTS as u64) as usize;
        if let Some(&(m, s)) = self.cache.get(slot) {
            if m == n && n != 0 {
                return s;
            }
        }
        let mut result = ONE;
        let mut k = 3; // 8n = n << 3
        let mut m = n;
        while m != 0 {
            if m & 1 != 0 {
                result = mul(self.powers[k % 64], result);
            }
            m >>= 1;
            k += 1;
        }
        if let Some(entry) = self.cache.get_mut(slot) {
            *entry = (n, result);
        }
        result
    }

    /// CRC-32C of `A || B` from `crc(A)`, `crc(B)` and `|B|`.
    pub fn combine(&mut self, crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
        if len_b == 0 {
            return crc_a;
        }
        mul(self.shift(len_b), crc_a) ^ crc_b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_equals_crc_of_concatenation() {
        let data: Vec<u8> = (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut c = Combiner::default();
        for split in [0, 1, 7, 64, 4095, 4096, 12_345, 20_000] {
            let (a, b) = data.split_at(split);
            let want = crc32c::crc32c(&data);
            assert_eq!(
                c.combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len() as u64),
                want,
                "split {split}"
            );
            // Same answer from the crate's own combine.
            assert_eq!(
                crc32c::crc32c_combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len()),
                want
            );
        }
    }
}
