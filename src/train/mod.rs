//! Training, step for step with PyTorch: a train-mode forward pass that records what the
//! backward needs, the backward of every module (f64 inside each op, outputs rounded to f32 as
//! PyTorch's float32 autograd does), PyTorch's losses and optimizers (single-tensor CPU op
//! order, in f32), and the [`Trainer`] that ties them to a model. The batch order of a shuffled
//! `DataLoader` is [`EpochOrder`](crate::data::EpochOrder). See docs/TRAINING.md.

mod activation_grad;
pub(crate) mod backward;
mod checkpoint;
mod expr_grad;
pub(crate) mod fast_linear;
mod fused;
mod gpu_backend;
pub mod health;
mod linear_grad;
mod loss;
pub mod metrics;
pub(crate) mod norm_grad;
pub(crate) mod optim;
mod state_dict;
mod trainer;

pub use backward::activation_vjp;
pub use checkpoint::CHECKPOINT_FORMAT;
pub use health::{EpochReport, LayerHealth, Monitor};
pub use loss::{Loss, Reduction, Target};
pub use metrics::{Evaluation, evaluate};
pub use optim::Optimizer;
pub use state_dict::state_dict_bytes;
pub use trainer::{Backend, Trainer};
