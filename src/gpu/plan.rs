//! The GPU plan of a model, made once at load and pure (no device): which passes run, which
//! kernel runs each Linear layer, what is fused, which buffer each pass reads and writes, how
//! many rows one submit handles, and what the device's limits refuse. Unit-tested with made-up
//! limits; [`GpuMlp`](super::GpuMlp) uploads it and the workspace replays it.

use crate::error::{Error, Result};
use crate::gpu::kernels::linear::windowed::{self, Geometry};
use crate::gpu::kernels::linear::{self, BUFFER_WEIGHT_PAD, LinearKernel};
use crate::gpu::pack;
use crate::gpu::{GpuMlpOptions, KernelMode, WeightFormat};
use crate::model::Linear;
use crate::model::expr::{Binary, Expr, Node};
use crate::model::steps::{RowOp, Step, StepOp};

/// Keeps every f32 index in the shaders below 2³¹.
pub(crate) const MAX_INDEX_BYTES: u64 = 1 << 31;

/// What the plan needs to know about the device.
#[derive(Clone, Debug)]
pub(crate) struct DeviceCaps {
    /// A software adapter (lavapipe, llvmpipe): the windowed kernel is the fast one.
    pub(crate) software: bool,
    /// The device has subgroup operations (subgroups of at least 8) and uses them.
    pub(crate) subgroups: bool,
    pub(crate) limits: wgpu::Limits,
}

/// A buffer of the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Buf {
    /// The uploaded input.
    Input,
    /// One of the two activation buffers.
    Act(usize),
}

/// How a Linear pass runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LinearPlan {
    /// The windowed kernel, its weight in a texture.
    Windowed {
        geometry: Geometry,
        /// Invocations per workgroup.
        wg: u32,
        /// A row operation fused into the store step (subgroups, at most 32 outputs).
        row_op: Option<RowOp>,
        format: WeightFormat,
    },
    /// A storage-buffer kernel, picked per batch among these ([`linear::pick`]).
    Buffer { candidates: Vec<LinearKernel> },
}

/// What a pass computes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PassOp<'m> {
    /// `epilogue(x·Wᵀ + b)`; `bias`: whether the bias is added here.
    Linear {
        linear: &'m Linear,
        bias: bool,
        kernel: LinearPlan,
    },
    /// A row operation, then the epilogue, in place.
    Row(RowOp),
    /// The epilogue alone, in place.
    Elementwise,
}

/// One pass: one dispatch (or one per uniform window of the windowed kernel).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pass<'m> {
    pub(crate) op: PassOp<'m>,
    pub(crate) epilogue: Expr,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    /// What it reads and writes (the same buffer for in-place passes).
    pub(crate) src: Buf,
    pub(crate) dst: Buf,
}

/// The plan of a whole model.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan<'m> {
    pub(crate) passes: Vec<Pass<'m>>,
    /// The input is copied into `Act(0)` first: the first pass works in place, and the uploaded
    /// input must stay as it is (a prepared input is run again and again).
    pub(crate) copy_input: bool,
    /// The most rows one submit handles.
    pub(crate) chunk_rows: usize,
    /// vec4s of the widest activation row (input included).
    pub(crate) widest4: usize,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
}

impl Plan<'_> {
    /// Where the output is after the last pass.
    pub(crate) fn output(&self) -> Buf {
        self.passes.last().map_or(Buf::Input, |p| p.dst)
    }
}

/// Extra bytes after each activation buffer: the windowed kernel's uniform windows (x, and x_hi
/// one window further) may start at any row and must stay inside the buffer.
pub(crate) const WORKSPACE_SLACK: u64 = 2 * windowed::WINDOW_BYTES;

/// Plans `steps` (from [`crate::model::steps::steps`]) for a device.
pub(crate) fn plan<'m>(
    steps: &[Step<'m>],
    n_in: usize,
    caps: &DeviceCaps,
    options: GpuMlpOptions,
) -> Result<Plan<'m>> {
    let limits = &caps.limits;
    let max_binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        .min(MAX_INDEX_BYTES);
    // Refuse what can never fit before anything is allocated.
    let candidates = linear::buffer_candidates(options.kernel, caps.software, limits)?;
    let windowed_ok = match options.kernel {
        LinearKernel::Auto => caps.software,
        LinearKernel::Windowed => true,
        _ => false,
    };
    let mut passes: Vec<Pass<'m>> = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        match step.op {
            StepOp::Linear(l) => {
                let geometry = windowed_ok
                    .then(|| {
                        Geometry::new(l.in_features(), l.out_features(), limits, caps.subgroups)
                    })
                    .flatten();
                if geometry.is_some() && options.weights == WeightFormat::F16 {
                    let layer = steps[..i]
                        .iter()
                        .filter(|s| matches!(s.op, StepOp::Linear(_)))
                        .count();
                    windowed::check_f16(l, layer)?;
                }
                let kernel = match geometry {
                    Some(geometry) => LinearPlan::Windowed {
                        geometry,
                        wg: windowed::wg_for(pack::vec4s(l.out_features())),
                        row_op: None,
                        format: options.weights,
                    },
                    None => {
                        check_weight_binding(i, l, max_binding)?;
                        LinearPlan::Buffer {
                            candidates: candidates.clone(),
                        }
                    }
                };
                let separate = options.mode == KernelMode::Separate;
                let mut pass = Pass {
                    op: PassOp::Linear {
                        linear: l,
                        bias: l.bias().is_some() && !separate,
                        kernel,
                    },
                    epilogue: step.epilogue.clone(),
                    n_in: step.n_in,
                    n_out: step.n_out,
                    src: Buf::Input,
                    dst: Buf::Input,
                };
                if separate {
                    pass.epilogue = Expr::identity();
                    passes.push(pass);
                    if let Some(b) = l.bias() {
                        passes.push(elementwise(bias_add(b), step.n_out));
                    }
                    if !step.epilogue.is_identity() {
                        passes.push(elementwise(step.epilogue.clone(), step.n_out));
                    }
                } else {
                    // A softmax / log-softmax right after fits the store step when one
                    // subgroup holds a whole row.
                    let next = steps.get(i + 1);
                    if let (
                        Some(Step {
                            op: StepOp::Row(op @ (RowOp::Softmax | RowOp::LogSoftmax)),
                            epilogue,
                            ..
                        }),
                        PassOp::Linear {
                            kernel: LinearPlan::Windowed { wg, row_op, .. },
                            ..
                        },
                    ) = (next, &mut pass.op)
                        && caps.subgroups
                        && *wg == windowed::SUBGROUP_WG
                        && step.epilogue.is_identity()
                    {
                        *row_op = Some(*op);
                        pass.epilogue = epilogue.clone();
                        i += 1;
                    }
                    passes.push(pass);
                }
            }
            StepOp::Row(op) => {
                let separate = options.mode == KernelMode::Separate && !step.epilogue.is_identity();
                passes.push(Pass {
                    op: PassOp::Row(op),
                    epilogue: if separate {
                        Expr::identity()
                    } else {
                        step.epilogue.clone()
                    },
                    n_in: step.n_in,
                    n_out: step.n_out,
                    src: Buf::Input,
                    dst: Buf::Input,
                });
                if separate {
                    passes.push(elementwise(step.epilogue.clone(), step.n_out));
                }
            }
            StepOp::Elementwise => passes.push(elementwise(step.epilogue.clone(), step.n_out)),
        }
        i += 1;
    }
    // Buffers: a Linear pass reads the current buffer and writes the other activation buffer;
    // the other passes work in place, on a copy of the input if they come first.
    let copy_input = !matches!(passes.first().map(|p| &p.op), Some(PassOp::Linear { .. }));
    let mut cur = if copy_input { Buf::Act(0) } else { Buf::Input };
    for p in &mut passes {
        p.src = cur;
        if matches!(p.op, PassOp::Linear { .. }) {
            cur = match cur {
                Buf::Act(0) => Buf::Act(1),
                _ => Buf::Act(0),
            };
        }
        p.dst = cur;
    }
    let widest4 = passes
        .iter()
        .map(|p| pack::vec4s(p.n_out))
        .chain([pack::vec4s(n_in)])
        .max()
        .unwrap_or(1);
    let n_out = passes.last().map_or(n_in, |p| p.n_out);
    let chunk_rows = chunk_rows(&passes, widest4, max_binding, caps)?;
    Ok(Plan {
        passes,
        copy_input,
        chunk_rows,
        widest4,
        n_in,
        n_out,
    })
}

/// An elementwise pass (buffers are assigned later).
fn elementwise<'m>(epilogue: Expr, n: usize) -> Pass<'m> {
    Pass {
        op: PassOp::Elementwise,
        epilogue,
        n_in: n,
        n_out: n,
        src: Buf::Input,
        dst: Buf::Input,
    }
}

/// `x + b[c]`.
fn bias_add(b: &[f32]) -> Expr {
    let nodes = vec![
        Node::Input,
        Node::Column(b.to_vec().into()),
        Node::Binary(Binary::Add, 0, 1),
    ];
    Expr::from_nodes(nodes).expect("a well-formed expression")
}

/// A storage-buffer weight must fit one binding.
fn check_weight_binding(step: usize, l: &Linear, max_binding: u64) -> Result<()> {
    let rows = l.in_features().next_multiple_of(BUFFER_WEIGHT_PAD.0);
    let cols = l.out_features().next_multiple_of(BUFFER_WEIGHT_PAD.1);
    let bytes = pack::f32_bytes(rows).saturating_mul(cols as u64);
    if bytes > max_binding {
        return Err(Error::OutOfMemory(format!(
            "step {step}'s weight Linear({}, {}) needs {bytes} bytes on the device, over the \
             largest storage binding of {max_binding} bytes; splitting one weight matrix across \
             bindings is not supported",
            l.in_features(),
            l.out_features()
        )));
    }
    Ok(())
}

/// The most rows one submit handles: the activations must fit a storage binding, and every
/// kernel's grid the device's workgroup limit.
fn chunk_rows(
    passes: &[Pass<'_>],
    widest4: usize,
    max_binding: u64,
    caps: &DeviceCaps,
) -> Result<usize> {
    let row_bytes = pack::f32_bytes(widest4 * 4);
    let rows_by_binding = max_binding.saturating_sub(WORKSPACE_SLACK) / row_bytes;
    let rows_per_group = passes
        .iter()
        .filter_map(|p| match &p.op {
            PassOp::Linear {
                kernel: LinearPlan::Buffer { candidates },
                ..
            } => candidates
                .iter()
                .filter_map(|k| k.buffer_kernel())
                .map(|b| b.block.0)
                .min(),
            // With subgroups the windowed kernel's window is the whole chunk: one grid of 16-row
            // blocks (without, windows of 64 KiB are far below the limit).
            PassOp::Linear {
                kernel: LinearPlan::Windowed { .. },
                ..
            } if caps.subgroups => Some(windowed::BLOCK_ROWS),
            _ => None,
        })
        .min()
        .unwrap_or(u32::MAX);
    let rows_by_grid = u64::from(caps.limits.max_compute_workgroups_per_dimension)
        .saturating_mul(u64::from(rows_per_group));
    let chunk = rows_by_binding.min(rows_by_grid) as usize;
    if chunk == 0 {
        return Err(Error::OutOfMemory(format!(
            "one row of activations ({row_bytes} bytes) exceeds the largest storage binding \
             ({max_binding} bytes)"
        )));
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::model::steps::steps;
    use crate::model::{Mlp, Module};

    fn caps(software: bool, subgroups: bool) -> DeviceCaps {
        DeviceCaps {
            software,
            subgroups,
            limits: wgpu::Limits::default(),
        }
    }

    fn mnist() -> Mlp {
        Mlp::builder(784)
            .layer(512, Activation::Relu)
            .layer(512, Activation::Relu)
            .layer(10, Activation::Softmax)
            .build()
            .unwrap()
    }

    fn kinds(p: &Plan<'_>) -> Vec<String> {
        p.passes
            .iter()
            .map(|p| match &p.op {
                PassOp::Linear { kernel, .. } => match kernel {
                    LinearPlan::Windowed {
                        row_op: Some(_), ..
                    } => "windowed+row".into(),
                    LinearPlan::Windowed { .. } => "windowed".into(),
                    LinearPlan::Buffer { candidates } => format!("{candidates:?}"),
                },
                PassOp::Row(op) => format!("{op:?}"),
                PassOp::Elementwise => "elementwise".into(),
            })
            .collect()
    }

    #[test]
    fn software_adapters_run_the_windowed_kernel_and_fuse_a_narrow_softmax() {
        let m = mnist();
        let p = plan(&steps(&m), 784, &caps(true, true), GpuMlpOptions::default()).unwrap();
        assert_eq!(kinds(&p), ["windowed", "windowed", "windowed+row"]);
        assert_eq!(
            p.passes.iter().map(|p| (p.src, p.dst)).collect::<Vec<_>>(),
            [
                (Buf::Input, Buf::Act(0)),
                (Buf::Act(0), Buf::Act(1)),
                (Buf::Act(1), Buf::Act(0))
            ]
        );
        // Without subgroups the softmax is a row pass of its own, in place.
        let p = plan(
            &steps(&m),
            784,
            &caps(true, false),
            GpuMlpOptions::default(),
        )
        .unwrap();
        assert_eq!(kinds(&p), ["windowed", "windowed", "windowed", "Softmax"]);
        assert_eq!(p.passes[3].src, p.passes[3].dst);
    }

    #[test]
    fn hardware_gpus_pick_among_the_buffer_kernels() {
        let m = mnist();
        let p = plan(
            &steps(&m),
            784,
            &caps(false, true),
            GpuMlpOptions::default(),
        )
        .unwrap();
        assert!(kinds(&p)[0].contains("Gemv") && kinds(&p)[0].contains("Tiled128"));
        assert_eq!(kinds(&p)[3], "Softmax");
    }

    #[test]
    fn separate_mode_splits_bias_epilogue_and_row_epilogue() {
        let m = Mlp::new(vec![
            Module::Linear(Linear::new(3, 5, vec![0.5; 15], Some(vec![1.0; 5])).unwrap()),
            Module::Activation(Activation::Tanh),
            Module::LayerNorm(crate::model::LayerNorm::default_init(5)),
        ])
        .unwrap();
        let opts = GpuMlpOptions {
            mode: KernelMode::Separate,
            ..GpuMlpOptions::default()
        };
        let p = plan(&steps(&m), 3, &caps(true, true), opts).unwrap();
        assert_eq!(
            kinds(&p),
            [
                "windowed",
                "elementwise",
                "elementwise",
                "Normalize { eps: 1e-5 }",
                "elementwise"
            ]
        );
        assert!(
            p.passes
                .iter()
                .all(|p| !matches!(p.op, PassOp::Linear { bias: true, .. }))
        );
    }

    #[test]
    fn a_leading_elementwise_pass_works_on_a_copy_of_the_input() {
        let m = Mlp::new(vec![
            Module::BatchNorm1d(crate::model::BatchNorm1d::default_init(3)),
            Module::Linear(Linear::new(3, 2, vec![0.5; 6], None).unwrap()),
        ])
        .unwrap();
        let p = plan(&steps(&m), 3, &caps(true, true), GpuMlpOptions::default()).unwrap();
        assert!(p.copy_input);
        assert_eq!(
            (p.passes[0].src, p.passes[0].dst),
            (Buf::Act(0), Buf::Act(0))
        );
        assert_eq!(
            (p.passes[1].src, p.passes[1].dst),
            (Buf::Act(0), Buf::Act(1))
        );
    }

    #[test]
    fn chunks_fit_the_binding_and_the_grid() {
        let m = mnist();
        let mut c = caps(true, true);
        // The widest row is the input's 784 features.
        c.limits.max_storage_buffer_binding_size = WORKSPACE_SLACK + 784 * 4 * 100;
        let p = plan(&steps(&m), 784, &c, GpuMlpOptions::default()).unwrap();
        assert_eq!(p.chunk_rows, 100);
        let mut c = caps(false, true);
        c.limits.max_compute_workgroups_per_dimension = 10;
        let p = plan(&steps(&m), 784, &c, GpuMlpOptions::default()).unwrap();
        assert_eq!(p.chunk_rows, 40); // GEMV: 4 rows per workgroup
    }

    #[test]
    fn a_weight_over_the_largest_binding_is_refused() {
        let m = Mlp::builder(4096)
            .layer(4096, Activation::Relu)
            .build()
            .unwrap();
        let mut c = caps(false, true);
        c.limits.max_storage_buffer_binding_size = 1 << 20;
        let e = plan(&steps(&m), 4096, &c, GpuMlpOptions::default()).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory(_)), "{e}");
    }
}
