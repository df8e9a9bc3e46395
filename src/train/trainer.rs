//! [`Trainer`]: a model, a loss and an optimizer, trained step for step as PyTorch's
//! `zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step()` loop trains them.

use std::fmt;

use crate::data::EpochOrder;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::model::{Mlp, TensorKind, TensorValues};
use crate::rng::Generator;
use crate::train::backward;
use crate::train::health::Monitor;
use crate::train::linear_grad::Precision;
use crate::train::loss::{Loss, Reduction, Target, select_rows};
use crate::train::optim::{OptimState, Optimizer};

/// Where a training step runs: the seam through which each path plugs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The f64 reference: every op computed in f64 and rounded to f32 (the yardstick).
    CpuReference,
    /// The fast CPU path: the matrix products on the packed f32 kernels of
    /// [`CpuMlp`](crate::CpuMlp) and their thread pool; the elementwise ops, norms, losses and
    /// optimizers are the reference's.
    #[default]
    Cpu,
    /// The GPU: not implemented yet (an error says so).
    Gpu,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::CpuReference => "cpu-reference",
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        })
    }
}

/// Trains an [`Mlp`] with a [`Loss`] and an [`Optimizer`].
///
/// ```
/// use wgpu_mlp::train::{Backend, Loss, Optimizer, Reduction, Target, Trainer};
/// use wgpu_mlp::{Activation, Matrix, Mlp};
///
/// let model = Mlp::builder(2).layer(4, Activation::Tanh).layer(1, Activation::Identity)
///     .seed(0).build()?;
/// let mut t = Trainer::new(model, Loss::Mse, Reduction::Mean, Optimizer::sgd(0.1),
///                          Backend::CpuReference)?;
/// let x = Matrix::new(4, 2, vec![0., 0., 0., 1., 1., 0., 1., 1.])?;
/// let y = Target::Values(Matrix::new(4, 1, vec![0., 1., 1., 0.])?);
/// let first = t.step(&x, &y)?;
/// for _ in 0..50 { t.step(&x, &y)?; }
/// assert!(t.step(&x, &y)? < first);
/// let trained: Mlp = t.into_model();
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Debug)]
pub struct Trainer {
    model: Mlp,
    loss: Loss,
    reduction: Reduction,
    optim: OptimState,
    precision: Precision,
    dropout: Generator,
    steps: u64,
}

impl Trainer {
    /// Checks the loss, the optimizer and that every module can be trained (an ONNX
    /// elementwise subgraph cannot: the error names it), and that `backend` is available.
    pub fn new(
        model: Mlp,
        loss: Loss,
        reduction: Reduction,
        optimizer: Optimizer,
        backend: Backend,
    ) -> Result<Self> {
        let precision = match backend {
            Backend::CpuReference => Precision::Reference,
            Backend::Cpu => Precision::Fast,
            Backend::Gpu => {
                return Err(Error::invalid(
                    "training on the GPU is not implemented yet: use --device cpu or \
                     cpu-reference",
                ));
            }
        };
        loss.check()?;
        backward::check_trainable(&model)?;
        Ok(Trainer {
            model,
            loss,
            reduction,
            optim: OptimState::new(optimizer)?,
            precision,
            dropout: Generator::new(0),
            steps: 0,
        })
    }

    /// Seeds the generator of the Dropout masks (default 0). The masks are this crate's own
    /// draws, not PyTorch's: a model with Dropout trains as PyTorch's does in distribution,
    /// not bit for bit.
    pub fn dropout_seed(mut self, seed: u64) -> Self {
        self.dropout = Generator::new(seed);
        self
    }

    /// One optimizer step on the batch `x` (`[batch, in]`) with targets `y`: returns the loss
    /// as `loss.item()` gives it. A loss that is NaN or infinite stops with an error naming the
    /// step (counted from 1), and the model is left as it was before the step.
    pub fn step(&mut self, x: &Matrix, y: &Target) -> Result<f32> {
        self.step_inner(x, y, None)
    }

    /// [`Trainer::step`], also showing `monitor` what the step saw (its outputs, every module's
    /// input, the gradients and the updates): see [`Monitor`].
    pub fn step_monitored(&mut self, x: &Matrix, y: &Target, monitor: &mut Monitor) -> Result<f32> {
        self.step_inner(x, y, Some(monitor))
    }

    fn step_inner(
        &mut self,
        x: &Matrix,
        y: &Target,
        mut monitor: Option<&mut Monitor>,
    ) -> Result<f32> {
        let (loss, grads) = self.loss_and_gradients(x, y, monitor.as_deref_mut())?;
        let before = monitor.as_ref().map(|m| m.weights(&self.model));
        let params: Vec<(usize, TensorKind)> = self
            .model
            .parameters()
            .iter()
            .map(|t| (t.module, t.kind))
            .collect();
        for (k, ((module, kind), g)) in params.into_iter().zip(&grads).enumerate() {
            let p = self.model.tensor_mut(module, kind)?;
            self.optim.update(k, p, g);
        }
        self.steps += 1;
        if let (Some(m), Some(before)) = (monitor, before) {
            m.observe_update(&self.model, &grads, &before);
        }
        Ok(loss)
    }

    /// The loss on a batch and the gradient of every trainable tensor (in
    /// [`Mlp::parameters`] order), as `loss.backward()` leaves them in `.grad`, without an
    /// optimizer step. BatchNorm's running statistics are left as they were.
    pub fn gradients(&mut self, x: &Matrix, y: &Target) -> Result<(f32, Vec<Vec<f32>>)> {
        let buffers = snapshot_buffers(&self.model);
        let out = self.loss_and_gradients(x, y, None);
        restore_buffers(&mut self.model, buffers);
        out
    }

    /// The train-mode forward pass, the loss and the backward pass.
    fn loss_and_gradients(
        &mut self,
        x: &Matrix,
        y: &Target,
        monitor: Option<&mut Monitor>,
    ) -> Result<(f32, Vec<Vec<f32>>)> {
        self.model.check_input(x.rows(), x.cols())?;
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
        let step = self.steps + 1;
        let buffers = snapshot_buffers(&self.model);
        let tape = backward::forward(
            &mut self.model,
            x.as_slice(),
            x.rows(),
            self.precision,
            &mut self.dropout,
        );
        // A module's error (BatchNorm's batch of one) says which step it stopped at.
        let tape = tape.map_err(|e| {
            Error::invalid(format!(
                "at step {step}: {}",
                e.to_string().trim_start_matches("invalid argument: ")
            ))
        });
        let evaluated = tape.and_then(|tape| {
            let out = Matrix::new(x.rows(), self.model.out_features(), tape.output().to_vec())?;
            let (loss, grad) = self.loss.evaluate(&out, y, self.reduction)?;
            if !loss.is_finite() {
                return Err(Error::invalid(format!(
                    "the loss became {loss} at step {step}: training stopped (lower --lr, \
                     check the inputs for NaN or huge values)"
                )));
            }
            Ok((tape, loss, grad))
        });
        let (tape, loss, grad) = match evaluated {
            Ok(v) => v,
            Err(e) => {
                restore_buffers(&mut self.model, buffers);
                return Err(e);
            }
        };
        if let Some(m) = monitor {
            m.observe_forward(&self.model, &tape, y, loss, self.reduction);
        }
        let grads = backward::backward(&self.model, &tape, grad, self.precision)?;
        Ok((loss, grads))
    }

    /// One epoch over the data set `x`, `y` in the batches `order` gives (see [`EpochOrder`]):
    /// the loss of each step.
    pub fn epoch(&mut self, x: &Matrix, y: &Target, order: &mut EpochOrder) -> Result<Vec<f32>> {
        if y.rows() != x.rows() {
            return Err(Error::shape(format!(
                "the input has {} rows but the target {}",
                x.rows(),
                y.rows()
            )));
        }
        let mut losses = Vec::new();
        for batch in order.next_epoch() {
            let xb = select_rows(x, &batch)?;
            let yb = y.select(&batch)?;
            losses.push(self.step(&xb, &yb)?);
        }
        Ok(losses)
    }

    /// [`Trainer::epoch`] with a [`Monitor`] watching every step, and `on_step(done, of, loss)`
    /// called after each (a progress display).
    pub fn epoch_monitored(
        &mut self,
        x: &Matrix,
        y: &Target,
        order: &mut EpochOrder,
        monitor: &mut Monitor,
        mut on_step: impl FnMut(usize, usize, f32),
    ) -> Result<Vec<f32>> {
        if y.rows() != x.rows() {
            return Err(Error::shape(format!(
                "the input has {} rows but the target {}",
                x.rows(),
                y.rows()
            )));
        }
        let batches = order.next_epoch();
        let mut losses = Vec::with_capacity(batches.len());
        for (b, batch) in batches.iter().enumerate() {
            let xb = select_rows(x, batch)?;
            let yb = y.select(batch)?;
            let loss = self.step_monitored(&xb, &yb, monitor)?;
            losses.push(loss);
            on_step(b + 1, batches.len(), loss);
        }
        Ok(losses)
    }

    /// The loss, the reduction, the optimizer state and the Dropout generator, for a
    /// checkpoint (`train::checkpoint`).
    pub(crate) fn parts(&self) -> (Loss, Reduction, &OptimState, &Generator) {
        (self.loss, self.reduction, &self.optim, &self.dropout)
    }

    /// The model, the optimizer state, the Dropout generator and the step count, for
    /// restoring a checkpoint.
    pub(crate) fn parts_mut(&mut self) -> (&mut Mlp, &mut OptimState, &mut Generator, &mut u64) {
        (
            &mut self.model,
            &mut self.optim,
            &mut self.dropout,
            &mut self.steps,
        )
    }

    /// The model as trained so far.
    pub fn model(&self) -> &Mlp {
        &self.model
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The trained model.
    pub fn into_model(self) -> Mlp {
        self.model
    }
}

/// A copy of the buffers a forward pass changes (BatchNorm's running statistics and count).
type Buffers = Vec<(usize, TensorKind, Option<Vec<f32>>, i64)>;

fn snapshot_buffers(model: &Mlp) -> Buffers {
    model
        .tensors()
        .into_iter()
        .filter(|t| !t.trainable)
        .map(|t| match t.values {
            TensorValues::F32(v) => (t.module, t.kind, Some(v.to_vec()), 0),
            TensorValues::Count(n) => (t.module, t.kind, None, n),
        })
        .collect()
}

fn restore_buffers(model: &mut Mlp, buffers: Buffers) {
    for (module, kind, values, count) in buffers {
        // The shapes are the model's own: these writes cannot fail.
        let _ = match values {
            Some(v) => model.set_tensor(module, kind, &v),
            None => model.set_num_batches_tracked(module, count),
        };
    }
}
