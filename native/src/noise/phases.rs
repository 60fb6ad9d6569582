//! `WNA_PROFILE=1`: where the time of a noise run goes, phase by phase.

use crate::error::Result;
use candle_core::Device;

/// `WNA_PROFILE=1`: time the phases of each batch (waiting for the device at each step, which
/// costs some overlap) and print the totals to stderr.
pub(crate) struct Phases<'a> {
    device: &'a Device,
    pub(crate) on: bool,
    last: std::time::Instant,
    totals: Vec<(String, f64)>,
}

impl<'a> Phases<'a> {
    pub(crate) fn new(device: &'a Device) -> Self {
        Self {
            device,
            on: std::env::var_os("WNA_PROFILE").is_some(),
            last: std::time::Instant::now(),
            totals: Vec::new(),
        }
    }

    pub(crate) fn lap(&mut self, name: &str) -> Result<()> {
        if !self.on {
            return Ok(());
        }
        self.device.synchronize()?;
        let s = self.last.elapsed().as_secs_f64();
        self.last = std::time::Instant::now();
        match self.totals.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t += s,
            None => self.totals.push((name.to_string(), s)),
        }
        Ok(())
    }

    pub(crate) fn report(&self, samples: u64) {
        for (name, s) in &self.totals {
            eprintln!(
                "wna profile: {name}: {s:.3} s ({:.2} us/sample)",
                1e6 * s / samples.max(1) as f64
            );
        }
    }
}
