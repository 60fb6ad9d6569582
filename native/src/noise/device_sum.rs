//! An f64 running sum kept on the device of the tensors added to it, downloaded once, when read:
//! a GPU run then syncs with the host once per run for its statistics, not once per batch per
//! array.

use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};

pub(crate) struct DeviceSum {
    sum: Tensor,
}

impl DeviceSum {
    /// `len` zeros on `device`.
    pub(crate) fn zeros(len: usize, device: &Device) -> Result<Self> {
        Ok(Self {
            sum: Tensor::zeros(len, DType::F64, device)?,
        })
    }

    /// Adds `t`, of any shape with as many elements, in f64.
    pub(crate) fn add(&mut self, t: &Tensor) -> Result<()> {
        let len = self.sum.elem_count();
        if t.elem_count() != len {
            return Err(Error::Shape {
                op: "accumulate",
                expected: format!("{len} values"),
                got: t.elem_count().to_string(),
            });
        }
        self.sum = (&self.sum + t.flatten_all()?.to_dtype(DType::F64)?)?;
        Ok(())
    }

    /// The sum, on the host.
    pub(crate) fn read(&self) -> Result<Vec<f64>> {
        Ok(self.sum.to_vec1()?)
    }
}
