//! Training on the GPU: the training plan (`plan.rs`: forward keeping what backward needs, the
//! loss, backward, the optimizer's update, as one [`Plan`](super::plan::Plan) of named tensors)
//! and its driver (`session.rs`: the plan uploaded once, one submit per step, the loss read
//! back only when asked for, parameters read back into an [`Mlp`](crate::Mlp)). The public
//! face is [`Trainer`](crate::train::Trainer) with `Backend::Gpu`; see docs/TRAINING.md.

mod batchnorm;
mod builder;
mod plan;
#[cfg(test)]
mod plan_tests;
mod session;
mod update;

pub(crate) use plan::check_supported;
pub use session::GpuBatch;
pub(crate) use session::{Batch, GpuTraining};
