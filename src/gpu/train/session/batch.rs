//! A step's batch: from the host, checked as the CPU trainer checks it, or uploaded to the
//! device once ([`GpuBatch`]).

use super::GpuTraining;
use crate::error::{Error, Result};
use crate::gpu::device_lock::Held;
use crate::gpu::error_scope::ErrorScope;
use crate::gpu::kernels::matmul::Matmul;
use crate::gpu::pack;
use crate::matrix::Matrix;
use crate::train::{Reduction, Target};

/// A batch uploaded to the device once, for steps that do not upload their batch
/// ([`Trainer::step_batch`](crate::train::Trainer::step_batch)): the inputs and the targets in
/// device buffers of their own.
#[derive(Debug)]
pub struct GpuBatch {
    // Released under the device lock (GL: see device_lock.rs).
    pub(super) x: Held<wgpu::Buffer>,
    pub(super) y: Held<wgpu::Buffer>,
    pub(super) rows: usize,
}

impl GpuBatch {
    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// Where a step's batch comes from.
pub(crate) enum Batch<'a> {
    Host(&'a Matrix, &'a Target),
    Device(&'a GpuBatch),
}

impl Batch<'_> {
    pub(super) fn rows(&self) -> usize {
        match self {
            Batch::Host(x, _) => x.rows(),
            Batch::Device(b) => b.rows,
        }
    }
}

impl GpuTraining {
    /// Checks a host batch's shapes and targets as the CPU trainer does.
    pub(super) fn check_batch(&self, x: &Matrix, y: &Target) -> Result<()> {
        let plan = &self.program.plan;
        if x.cols() != plan.n_in {
            return Err(Error::shape(format!(
                "the batch has {} columns but the model takes {}",
                x.cols(),
                plan.n_in
            )));
        }
        if x.rows() == 0 {
            return Err(Error::invalid("a training batch needs at least one row"));
        }
        if y.rows() != x.rows() {
            return Err(Error::shape(format!(
                "the batch has {} input rows but {} targets",
                x.rows(),
                y.rows()
            )));
        }
        if x.rows() < 2
            && let Some(&(module, _)) = self.batchnorms.first()
        {
            return Err(Error::invalid(format!(
                "at step {}: BatchNorm1d (module {module}) in train mode needs more than 1 value \
                 per channel, got a batch of 1 row (as PyTorch; use drop_last or another batch \
                 size)",
                self.steps + 1
            )));
        }
        let max = Matmul::max_rows(
            self.program
                .ctx
                .inner
                .limits
                .max_compute_workgroups_per_dimension,
        );
        if x.rows() > max {
            return Err(Error::invalid(format!(
                "a GPU training batch has at most {max} rows, not {}",
                x.rows()
            )));
        }
        // The loss's own checks (kinds, shapes, class ranges) on a zero output of the batch's
        // shape: the same messages as the CPU paths.
        match (self.loss.wants_classes(), y) {
            (true, Target::Classes(c)) => {
                let cols = plan.n_out as i64;
                if let Some((i, &bad)) = c.iter().enumerate().find(|(_, v)| **v < 0 || **v >= cols)
                {
                    return Err(Error::invalid(format!(
                        "{}: target {bad} at row {i} is out of bounds: the model has {cols} \
                         classes (0..={})",
                        self.loss,
                        cols - 1
                    )));
                }
                Ok(())
            }
            (false, Target::Values(m)) if m.cols() == plan.n_out => Ok(()),
            _ => {
                let zeros = Matrix::new(x.rows(), plan.n_out, vec![0.0; x.rows() * plan.n_out])?;
                self.loss.evaluate(&zeros, y, Reduction::Mean).map(|_| ())
            }
        }
    }

    /// The target values as the device stores them (class indices as f32).
    pub(super) fn target_values(y: &Target) -> std::borrow::Cow<'_, [f32]> {
        match y {
            Target::Values(m) => m.as_slice().into(),
            Target::Classes(c) => c.iter().map(|&k| k as f32).collect::<Vec<_>>().into(),
        }
    }

    /// Uploads a batch to device buffers of its own.
    pub(crate) fn upload_batch(&self, x: &Matrix, y: &Target) -> Result<GpuBatch> {
        self.check_batch(x, y)?;
        let inner = &self.program.ctx.inner;
        let _held = inner.hold();
        let scope = ErrorScope::push(&inner.device);
        let buffer = |label: &str, values: &[f32]| {
            let b = inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: pack::f32_bytes(values.len()).next_multiple_of(16).max(16),
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            inner
                .queue
                .write_buffer(&b, 0, bytemuck::cast_slice(values));
            Held::new(b, inner.lock.clone())
        };
        let batch = GpuBatch {
            x: buffer("batch x", x.as_slice()),
            y: buffer("batch y", &Self::target_values(y)),
            rows: x.rows(),
        };
        scope.pop()?;
        Ok(batch)
    }
}
