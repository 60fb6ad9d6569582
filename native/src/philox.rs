//! Philox4x32-10 counter-based generator (Salmon et al., SC'11): a sample's noise depends only on
//! the seed and the sample's index, so maps do not change with batch size, threads or device.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Ten Philox rounds over `counter` with `key`.
#[inline]
pub fn philox4x32(mut ctr: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for _ in 0..10 {
        let p0 = (M0 as u64) * (ctr[0] as u64);
        let p1 = (M1 as u64) * (ctr[2] as u64);
        ctr = [
            ((p1 >> 32) as u32) ^ ctr[1] ^ key[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ ctr[3] ^ key[1],
            p0 as u32,
        ];
        key = [key[0].wrapping_add(W0), key[1].wrapping_add(W1)];
    }
    ctr
}

/// A stream of values for one (seed, stream, index) triple.
#[derive(Debug, Clone, Copy)]
pub struct Philox {
    key: [u32; 2],
    stream: u32,
    index: u64,
}

impl Philox {
    pub fn new(seed: u64, stream: u32, index: u64) -> Self {
        Self {
            key: [seed as u32, (seed >> 32) as u32],
            stream,
            index,
        }
    }

    /// The `block`-th group of four 32-bit words of this stream.
    #[inline]
    pub fn block(&self, block: u32) -> [u32; 4] {
        philox4x32(
            [
                block,
                self.stream,
                self.index as u32,
                (self.index >> 32) as u32,
            ],
            self.key,
        )
    }

    /// Fills `out` with uniforms in [0, 1), 24 bits each (exactly representable in f32).
    pub fn fill_uniform(&self, out: &mut [f32]) {
        for (b, chunk) in out.chunks_mut(4).enumerate() {
            let words = self.block(b as u32);
            for (o, w) in chunk.iter_mut().zip(words) {
                *o = (w >> 8) as f32 * (1.0 / 16_777_216.0);
            }
        }
    }

    /// Fills `out` with normal samples (Box-Muller on pairs of uniforms in (0, 1]).
    pub fn fill_normal(&self, out: &mut [f32], mean: f32, std: f32) {
        for (b, chunk) in out.chunks_mut(4).enumerate() {
            let w = self.block(b as u32);
            let u = |x: u32| ((x >> 8) as f32 + 1.0) * (1.0 / 16_777_216.0);
            let (r0, t0) = (
                (-2.0 * u(w[0]).ln()).sqrt(),
                std::f32::consts::TAU * u(w[1]),
            );
            let (r1, t1) = (
                (-2.0 * u(w[2]).ln()).sqrt(),
                std::f32::consts::TAU * u(w[3]),
            );
            let z = [r0 * t0.cos(), r0 * t0.sin(), r1 * t1.cos(), r1 * t1.sin()];
            for (o, z) in chunk.iter_mut().zip(z) {
                *o = mean + std * z;
            }
        }
    }

    /// One uniform in [0, 1) from word `i` (for shuffles and dropout masks).
    pub fn uniform_at(&self, i: u64) -> f32 {
        let w = self.block((i / 4) as u32)[(i % 4) as usize];
        (w >> 8) as f32 * (1.0 / 16_777_216.0)
    }
}

/// A seeded Fisher-Yates permutation of `0..n`.
pub fn permutation(n: usize, seed: u64, stream: u32) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let w = Philox::new(seed, stream, i as u64).block(0);
        let r = ((w[0] as u64) << 32 | w[1] as u64) % (i as u64 + 1);
        p.swap(i, r as usize);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // Random123's kat_vectors: philox4x32_10 with zero counter and key.
        assert_eq!(
            philox4x32([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
    }

    #[test]
    fn uniform_moments() {
        let mut v = vec![0f32; 100_000];
        Philox::new(7, 0, 0).fill_uniform(&mut v);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
    }
}
