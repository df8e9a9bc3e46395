//! The separate kernels, one call each, on matrices from the host: matmul, bias add, an
//! activation (elementwise or row). They build a one-step model per call (allocating) and exist
//! to check each kernel on its own against its CPU counterpart; models run through [`GpuMlp`].

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::model::{GpuMlp, GpuMlpOptions, KernelMode};
use crate::matrix::Matrix;
use crate::model::Linear;
use crate::model::expr::{Binary, Expr, Node};
use crate::model::steps::{RowOp, Step, StepOp};

/// Runs one step on `x`.
fn run(ctx: &GpuContext, x: &Matrix, step: Step<'_>) -> Result<Matrix> {
    let options = GpuMlpOptions {
        mode: KernelMode::Separate,
        ..GpuMlpOptions::default()
    };
    GpuMlp::from_steps(ctx, &[step], x.cols(), options)?.forward(x)
}

/// `x · Wᵀ` with the matmul kernel alone (`weight` is `[out, in]`).
pub fn matmul(ctx: &GpuContext, x: &Matrix, weight: &Matrix) -> Result<Matrix> {
    let linear = Linear::new(
        weight.cols(),
        weight.rows(),
        weight.as_slice().to_vec(),
        None,
    )?;
    if x.cols() != linear.in_features() {
        return Err(Error::shape(format!(
            "x is [{}, {}] but the weight is [{}, {}]",
            x.rows(),
            x.cols(),
            weight.rows(),
            weight.cols()
        )));
    }
    let step = Step {
        op: StepOp::Linear(&linear),
        epilogue: Expr::identity(),
        n_in: linear.in_features(),
        n_out: linear.out_features(),
    };
    run(ctx, x, step)
}

/// `x + b` (broadcast over rows) with the elementwise kernel alone.
pub fn bias_add(ctx: &GpuContext, x: &Matrix, bias: &[f32]) -> Result<Matrix> {
    if bias.len() != x.cols() {
        return Err(Error::shape(format!(
            "bias has {} values for a [{}, {}] input",
            bias.len(),
            x.rows(),
            x.cols()
        )));
    }
    let nodes = vec![
        Node::Input,
        Node::Column(bias.to_vec().into()),
        Node::Binary(Binary::Add, 0, 1),
    ];
    elementwise(ctx, x, &Expr::from_nodes(nodes)?)
}

/// An elementwise expression applied to every element with the elementwise kernel alone.
pub fn elementwise(ctx: &GpuContext, x: &Matrix, expr: &Expr) -> Result<Matrix> {
    if x.rows() == 0 || x.cols() == 0 {
        return Ok(x.clone());
    }
    expr.check_width(x.cols())?;
    let step = Step {
        op: StepOp::Elementwise,
        epilogue: expr.clone(),
        n_in: x.cols(),
        n_out: x.cols(),
    };
    run(ctx, x, step)
}

/// An activation applied to every element (or, for softmax and log-softmax, every row) with its
/// kernel alone.
pub fn activation(ctx: &GpuContext, x: &Matrix, act: Activation) -> Result<Matrix> {
    if !act.is_row() {
        return elementwise(ctx, x, &Expr::activation(act)?);
    }
    if x.rows() == 0 || x.cols() == 0 {
        return Ok(x.clone());
    }
    let op = if act == Activation::Softmax {
        RowOp::Softmax
    } else {
        RowOp::LogSoftmax
    };
    let step = Step {
        op: StepOp::Row(op),
        epilogue: Expr::identity(),
        n_in: x.cols(),
        n_out: x.cols(),
    };
    run(ctx, x, step)
}
