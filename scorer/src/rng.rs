//! A small, fast, seedable PRNG (xoshiro256++ seeded through SplitMix64).
//!
//! The samplers need a stream per (seed, sweep, partition) that is cheap to
//! create and identical on every platform, so results are reproducible for a
//! given seed and thread count; a dependency would add compile time for ~40
//! lines.

/// SplitMix64 step: used to expand seeds and to mix stream identifiers.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a stream identifier (e.g. seed, sweep, chunk) to one 64-bit seed.
pub(crate) fn mix(parts: &[u64]) -> u64 {
    let mut s = 0x6A09_E667_F3BC_C909u64;
    let mut out = 0;
    for &p in parts {
        s ^= p;
        out = splitmix64(&mut s);
        s = out;
    }
    out
}

/// FNV-1a of a string, to derive a per-document stream from its name.
pub(crate) fn hash_str(s: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// xoshiro256++.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose stream depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        Rng { s }
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[0].wrapping_add(self.s[3]).rotate_left(23).wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    #[inline]
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) (n > 0), by Lemire's multiply-shift.
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u64() as u32) * u64::from(n)) >> 32) as u32
    }
}

/// Four xoshiro256++ streams stepped together, for the Gibbs lane kernel:
/// eight f32 uniforms per step, which its AVX2 version computes with one
/// 4 × 64-bit vector op per scalar op of [`Rng::next_u64`], about a
/// twelfth of the per-uniform work of [`Rng::next_f32`].
#[derive(Debug, Clone)]
pub(crate) struct Rng4 {
    /// `s[i][l]` is word i of stream l's state: the layout of four 64-bit
    /// vector lanes, so `s[i]` loads as one vector.
    pub(crate) s: [[u64; 4]; 4],
}

impl Rng4 {
    /// Four streams whose states are consecutive SplitMix64 outputs of
    /// `seed` (as [`Rng::new`] seeds one).
    pub(crate) fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut s = [[0u64; 4]; 4];
        for l in 0..4 {
            for word in &mut s {
                word[l] = splitmix64(&mut sm);
            }
        }
        Rng4 { s }
    }

    /// Eight uniforms in [0, 1) with 24 bits of precision: stream l's next
    /// 64 bits give `out[2l]` (from its low 32 bits) and `out[2l + 1]` (from
    /// its high 32 bits), each the top 24 bits of its half (the order of
    /// 32-bit elements in a vector of four 64-bit lanes).
    #[inline(always)]
    pub(crate) fn next8(&mut self, out: &mut [f32; 8]) {
        for l in 0..4 {
            let [s0, s1, s2, s3] = [self.s[0][l], self.s[1][l], self.s[2][l], self.s[3][l]];
            let result = s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0);
            let t = s1 << 17;
            let s2 = s2 ^ s0;
            let s3 = s3 ^ s1;
            let s1 = s1 ^ s2;
            let s0 = s0 ^ s3;
            let s2 = s2 ^ t;
            let s3 = s3.rotate_left(45);
            [self.s[0][l], self.s[1][l], self.s[2][l], self.s[3][l]] = [s0, s1, s2, s3];
            out[2 * l] = ((result as u32) >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
            out[2 * l + 1] = (((result >> 32) as u32) >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_different_seeds_differ() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut c = Rng::new(8);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn uniforms_are_in_range_and_roughly_uniform() {
        let mut r = Rng::new(1);
        let mut hist = [0u32; 10];
        for _ in 0..100_000 {
            let x = r.next_f32();
            assert!((0.0..1.0).contains(&x));
            hist[(x * 10.0) as usize] += 1;
            assert!(r.below(7) < 7);
        }
        for h in hist {
            assert!((9_000..11_000).contains(&h), "{hist:?}");
        }
    }

    /// Each of the four streams is xoshiro256++ ([`Rng::next_u64`]) from
    /// its own state, and its halves land where `next8` says.
    #[test]
    fn rng4_lanes_are_xoshiro_streams() {
        let mut g = Rng4::new(9);
        let mut singles: Vec<Rng> = (0..4).map(|l| Rng { s: [g.s[0][l], g.s[1][l], g.s[2][l], g.s[3][l]] }).collect();
        let mut out = [0f32; 8];
        for _ in 0..100 {
            g.next8(&mut out);
            for (l, r) in singles.iter_mut().enumerate() {
                let x = r.next_u64();
                assert_eq!(out[2 * l], ((x as u32) >> 8) as f32 / 16_777_216.0);
                assert_eq!(out[2 * l + 1], ((x >> 40) as u32) as f32 / 16_777_216.0);
                assert!((0.0..1.0).contains(&out[2 * l]));
            }
        }
    }

    #[test]
    fn mix_depends_on_every_part() {
        assert_ne!(mix(&[1, 2, 3]), mix(&[1, 2, 4]));
        assert_ne!(mix(&[1, 2, 3]), mix(&[2, 2, 3]));
        assert_eq!(mix(&[1, 2, 3]), mix(&[1, 2, 3]));
    }
}
