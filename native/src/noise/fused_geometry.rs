//! The geometry of the fused white-noise kernels (`cuda/white_noise.cu`): the constants and the
//! `WnGeometry` struct they share with the launches (`fused_ops.rs`) and the plan (`fused.rs`),
//! in one place so neither of those needs the other.

/// Output channels one thread of `wna_wn_features` computes (`WN_CHANNELS`).
pub const CHANNELS_PER_THREAD: usize = 8;
/// Images whose softmax `wna_wn_class_sums` stages at a time (`WN_CHUNK`).
pub const CHUNK: usize = 32;
/// Columns of a sum row: 784 pixels, the weight, padding to a float4 (`WN_ROW`).
pub const ROW: usize = 788;
/// Threads per block of the two main kernels (`wna_wn_class_sums` needs at least 197).
pub const THREADS: u32 = 256;
/// Images `wna_wn_features` keeps in shared memory at once, at most: enough to fill the warps
/// of conv2 (4 x 25 pooled positions of `smaller` pad to 128 slots).
pub const MAX_GROUP: usize = 4;

/// `WnGeometry` of `cuda/white_noise.cu`, field for field.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub c1: u32,
    pub k1: u32,
    pub p1: u32,
    pub c2: u32,
    pub k2: u32,
    pub p2: u32,
    pub c2_padded: u32,
    pub group: u32,
}

impl Geometry {
    pub(crate) fn side0(&self) -> usize {
        28 + 2 * self.p1 as usize
    }
    pub(crate) fn pooled1(&self) -> usize {
        (self.side0() + 1 - self.k1 as usize) / 2
    }
    pub(crate) fn side1(&self) -> usize {
        self.pooled1() + 2 * self.p2 as usize
    }
    /// Side of conv2's pooled maps.
    pub fn pooled2(&self) -> usize {
        (self.side1() + 1 - self.k2 as usize) / 2
    }
    /// Floats of the packed parameters (`param_floats`).
    pub fn param_floats(&self) -> usize {
        let (c1, k1, c2p, k2) = (
            self.c1 as usize,
            self.k1 as usize,
            self.c2_padded as usize,
            self.k2 as usize,
        );
        c1 * (k1 * k1 + 3) + c2p * (c1 * k2 * k2 + 3)
    }
    /// Dynamic shared memory of `wna_wn_features` with `group` images per block.
    pub fn features_shared_bytes(&self, group: usize) -> usize {
        let per_image = self.side0().pow(2) + self.c1 as usize * self.side1().pow(2);
        4 * (self.param_floats() + group * per_image)
    }
    /// Features per image: conv2's pooled maps, flattened.
    pub fn features(&self) -> usize {
        self.c2 as usize * self.pooled2().pow(2)
    }
}

/// Dynamic shared memory of `wna_wn_class_sums`: the sums, a chunk's softmax, its predictions
/// and threshold flags.
pub fn class_sums_shared_bytes(classes: usize) -> usize {
    4 * (sum_width(classes) + CHUNK * classes + 2 * CHUNK)
}

/// Floats of one block's sums: `3 * classes + 1` rows of `ROW`.
pub fn sum_width(classes: usize) -> usize {
    (3 * classes + 1) * ROW
}
