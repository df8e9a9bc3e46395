//! Training, step for step with PyTorch: a train-mode forward pass that records what the
//! backward needs, the backward of every module (f64 inside each op, outputs rounded to f32 as
//! PyTorch's float32 autograd does), PyTorch's losses and optimizers (single-tensor CPU op
//! order, in f32), and the [`Trainer`] that ties them to a model. The batch order of a shuffled
//! `DataLoader` is [`EpochOrder`](crate::data::EpochOrder). See docs/TRAINING.md.

mod activation_grad;
mod backward;
mod expr_grad;
pub(crate) mod fast_linear;
mod fused;
mod linear_grad;
mod loss;
mod norm_grad;
mod optim;
mod state_dict;
mod trainer;

pub use backward::activation_vjp;
pub use loss::{Loss, Reduction, Target};
pub use optim::Optimizer;
pub use state_dict::state_dict_bytes;
pub use trainer::{Backend, Trainer};
