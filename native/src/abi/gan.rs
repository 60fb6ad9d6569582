//! The GAN across the boundary (`ffi/gan.ts`): an epoch of adversarial training, generation,
//! the discriminator's score and the Frechet distance.

use super::{export, slice, slice_mut, with_model};
use crate::gan::{self, frechet, GanConfig};
use crate::progress::Progress;

export! {
    /// One epoch of `gan::train_epoch` of generator `g` against discriminator `d` on `pixels`;
    /// writes discriminator loss, generator loss, mean D(x) and mean D(G(z)) to
    /// `metrics_out[0..4]`.
    fn wna_gan_train_epoch(
        g: u64,
        d: u64,
        pixels: *const f32,
        n_values: usize,
        options: *const u8,
        options_len: usize,
        progress: *mut u64,
        metrics_out: *mut f64,
    ) {
        if g == d {
            crate::bail!(
                InvalidArgument,
                "gan: the generator and the discriminator are the same model (handle {g})"
            );
        }
        let px = slice(pixels, n_values, "images")?;
        let cfg: GanConfig = super::options(options, options_len, "gan")?;
        let out = slice_mut(metrics_out, 4, "metrics")?;
        let m = with_model(g, |gm| {
            with_model(d, |dm| gan::train_epoch(gm, dm, px, &cfg, Progress::from_ptr(progress)))
        })?;
        out.copy_from_slice(&[m.d_loss, m.g_loss, m.d_real, m.d_fake]);
        Ok(())
    }
}

export! {
    /// `gan::generate`: pixels `[n * 784]` from latents `[n * dim]`.
    fn wna_generate(handle: u64, latent: *const f32, n_values: usize, out: *mut f32, out_len: usize) {
        let z = slice(latent, n_values, "latent")?;
        let out = slice_mut(out, out_len, "images")?;
        with_model(handle, |m| super::copy_out(out, &gan::generate(m, z)?, "images"))
    }
}

export! {
    /// `gan::discriminate`: the probability that each image is real.
    fn wna_discriminate(handle: u64, pixels: *const f32, n_values: usize, out: *mut f32, out_len: usize) {
        let px = slice(pixels, n_values, "images")?;
        let out = slice_mut(out, out_len, "scores")?;
        with_model(handle, |m| super::copy_out(out, &gan::discriminate(m, px)?, "scores"))
    }
}

export! {
    /// `frechet::frechet_distance` of two feature sets with `dims` columns, to `out[0]`.
    fn wna_frechet(a: *const f32, n_a: usize, b: *const f32, n_b: usize, dims: usize, out: *mut f64) {
        let a = slice(a, n_a, "first features")?;
        let b = slice(b, n_b, "second features")?;
        slice_mut(out, 1, "distance")?[0] = frechet::frechet_distance(a, b, dims)?;
        Ok(())
    }
}
