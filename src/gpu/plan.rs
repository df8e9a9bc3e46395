//! The GPU plan of a model, made once at load and pure (no device): which passes run, which
//! kernel runs each Linear layer, what is fused, which tensors each pass reads and writes, how
//! many rows one submit handles, and what the device's limits refuse. Unit-tested with made-up
//! limits; [`GpuMlp`](super::GpuMlp) uploads its fixed tensors and each workspace replays it.
//!
//! An inference plan fuses what it can and ping-pongs two activation tensors, overwriting what
//! backward would need; a training plan is another plan over the same [`Pass`] and [`Tensor`]
//! types (pre-activations kept, gradient and optimizer-state tensors, [`Phase::Backward`] and
//! [`Phase::Update`] passes): docs/KERNELS.md, "The GPU layer in five minutes".
//!
//! [`Phase::Backward`]: super::pass::Phase::Backward
//! [`Phase::Update`]: super::pass::Phase::Update

use crate::error::{Error, Result};
use crate::gpu::kernels::elementwise::{self, Elementwise};
use crate::gpu::kernels::epilogue::{self, Epilogue};
use crate::gpu::kernels::linear::windowed::{self, Geometry, Variant, Windowed};
use crate::gpu::kernels::linear::{self, BUFFER_WEIGHT_PAD, BufferLinear, LinearKernel};
use crate::gpu::kernels::row::{self, Row};
use crate::gpu::options::{GpuMlpOptions, KernelMode, WeightFormat};
use crate::gpu::pack::{self, PanelLayout};
use crate::gpu::pass::Pass;
use crate::gpu::tensor::{Extent, Role, Tensor, TensorId};
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

impl DeviceCaps {
    /// What `ctx`'s device is and has.
    pub(crate) fn of(ctx: &crate::gpu::GpuContext) -> Self {
        DeviceCaps {
            software: ctx.is_software(),
            subgroups: ctx.inner.subgroups,
            limits: ctx.inner.limits.clone(),
        }
    }
}

/// The plan of a whole model.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Every tensor a pass binds, by [`TensorId`].
    pub(crate) tensors: Vec<Tensor>,
    pub(crate) passes: Vec<Pass>,
    /// Where the rows are uploaded.
    pub(crate) input: TensorId,
    /// The input is copied into this tensor first when the first pass works in place: the
    /// uploaded input must stay as it is (a prepared input is run again and again).
    pub(crate) copy_input: Option<TensorId>,
    /// Where the output rows are after the last pass.
    pub(crate) output: TensorId,
    /// The most rows one submit handles.
    pub(crate) chunk_rows: usize,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
}

/// Extra bytes after each activation buffer: the windowed kernel's uniform windows (x, and x_hi
/// one window further) may start at any row and must stay inside the buffer.
pub(crate) const WORKSPACE_SLACK: u64 = 2 * windowed::WINDOW_BYTES;

/// Collects a plan's tensors and passes.
#[derive(Default)]
struct Builder {
    tensors: Vec<Tensor>,
    passes: Vec<Pass>,
}

impl Builder {
    fn tensor(&mut self, name: String, role: Role, extent: Extent) -> TensorId {
        self.tensors.push(Tensor { name, role, extent });
        TensorId(self.tensors.len() - 1)
    }

    /// Rows of `vec4s` vec4s, with the windowed kernel's slack.
    fn rows(&mut self, name: &str, role: Role, vec4s: usize) -> TensorId {
        let extent = Extent::Rows {
            vec4s,
            slack: WORKSPACE_SLACK,
        };
        self.tensor(name.into(), role, extent)
    }

    /// A constant of the next pass: `pass<i>.<what>`.
    fn constant(&mut self, what: &str, values: Vec<f32>) -> TensorId {
        let name = format!("pass{}.{what}", self.passes.len());
        self.tensor(name, Role::Constant, Extent::Values(values))
    }

    /// The epilogue's parameters as the next pass's `ep` tensor.
    fn epilogue(&mut self, ep: &Epilogue) -> TensorId {
        self.constant("ep", ep.params.clone())
    }

    /// An elementwise pass on `y`, in place.
    fn elementwise(&mut self, expr: &Expr, width: usize, y: TensorId) {
        let ep = epilogue::compile(expr, width);
        let ep_t = self.epilogue(&ep);
        let binds = vec![(elementwise::Y.name, y), (elementwise::EP.name, ep_t)];
        self.passes
            .push(Pass::forward(Elementwise { ep, width }, binds));
    }
}

/// Plans `steps` (from [`crate::model::steps::steps`]) for a device.
pub(crate) fn plan(
    steps: &[Step<'_>],
    n_in: usize,
    caps: &DeviceCaps,
    options: GpuMlpOptions,
) -> Result<Plan> {
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
    let separate = options.mode == KernelMode::Separate;
    let widest4 = steps
        .iter()
        .map(|s| pack::vec4s(s.n_out))
        .chain([pack::vec4s(n_in)])
        .max()
        .unwrap_or(1);
    let mut b = Builder::default();
    let input = b.rows("input", Role::Input, pack::vec4s(n_in));
    let acts = [
        b.rows("act0", Role::Activation, widest4),
        b.rows("act1", Role::Activation, widest4),
    ];
    // A Linear pass reads the current tensor and writes the other activation tensor; the other
    // passes work in place, on a copy of the input if they come first.
    let copy_input = steps
        .first()
        .is_some_and(|s| !matches!(s.op, StepOp::Linear(_)));
    let mut cur = if copy_input { acts[0] } else { input };
    // The fewest rows one workgroup of any Linear pass covers (the grid limit bounds a chunk).
    let mut rows_per_group = u32::MAX;
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        match step.op {
            StepOp::Linear(l) => {
                let dst = if cur == acts[0] { acts[1] } else { acts[0] };
                let geometry = windowed_ok
                    .then(|| Geometry::new(step.n_in, step.n_out, limits, caps.subgroups))
                    .flatten();
                let wg = windowed::wg_for(pack::vec4s(step.n_out));
                // A softmax / log-softmax right after fits the store step when one subgroup
                // holds a whole row.
                let fused = match steps.get(i + 1) {
                    Some(Step {
                        op: StepOp::Row(op @ (RowOp::Softmax | RowOp::LogSoftmax)),
                        epilogue,
                        ..
                    }) if geometry.is_some()
                        && !separate
                        && caps.subgroups
                        && wg == windowed::SUBGROUP_WG
                        && step.epilogue.is_identity()
                        && epilogue::compile(epilogue, step.n_out).fusable() =>
                    {
                        Some((*op, epilogue))
                    }
                    _ => None,
                };
                let expr = match fused {
                    _ if separate => Expr::identity(),
                    Some((_, e)) => e.clone(),
                    None => step.epilogue.clone(),
                };
                // An epilogue too long to inline at every store runs as a pass of its own.
                let apart = !separate && fused.is_none() && !epilogue::compile(&expr, 1).fusable();
                let expr = if apart { Expr::identity() } else { expr };
                let ep = epilogue::compile(&expr, step.n_out);
                let bias = l.bias().is_some() && !separate;
                let b_t = b.constant("b", pack::bias_padded(l));
                let ep_t = b.epilogue(&ep);
                let mut binds = vec![
                    (linear::X.name, cur),
                    (linear::B.name, b_t),
                    (linear::Y.name, dst),
                    (linear::EP.name, ep_t),
                ];
                let pass = match geometry {
                    Some(geometry) => {
                        if options.weights == WeightFormat::F16 {
                            let layer = steps[..i]
                                .iter()
                                .filter(|s| matches!(s.op, StepOp::Linear(_)))
                                .count();
                            windowed::check_f16(l, layer)?;
                        }
                        let max_dim = limits.max_texture_dimension_2d as usize;
                        let layout = PanelLayout::new(step.n_in, step.n_out, max_dim)
                            .expect("Geometry::new admits only layers whose panels fit");
                        let texels = pack::weight_panels(l, &layout);
                        let extent = Extent::Panels {
                            layout,
                            format: options.weights,
                            texels,
                        };
                        let name = format!("pass{}.wt", b.passes.len());
                        binds.push((linear::WT.name, b.tensor(name, Role::Constant, extent)));
                        if caps.subgroups {
                            // The window is the whole chunk: one grid of 16-row blocks.
                            rows_per_group = rows_per_group.min(windowed::BLOCK_ROWS);
                        } else {
                            binds.push((windowed::X_HI.name, cur));
                        }
                        let kernel = Windowed {
                            geometry,
                            wg,
                            row_op: match fused {
                                None => 0,
                                Some((RowOp::Softmax, _)) => 1,
                                Some(_) => 2,
                            },
                            variant: Variant {
                                subgroups: caps.subgroups,
                                format: options.weights,
                            },
                            bias,
                            ep,
                            layout,
                            n_in: step.n_in,
                            n_out: step.n_out,
                        };
                        Pass::forward(kernel, binds)
                    }
                    None => {
                        check_weight_binding(i, l, max_binding)?;
                        let (r, c) = BUFFER_WEIGHT_PAD;
                        let wt = b.constant("wt", pack::weight_transposed_padded(l, r, c));
                        binds.push((linear::WT.name, wt));
                        let block = candidates
                            .iter()
                            .filter_map(|k| linear::buffer_kernel(*k))
                            .map(|k| k.block.0)
                            .min();
                        rows_per_group = rows_per_group.min(block.unwrap_or(u32::MAX));
                        let kernel = BufferLinear {
                            candidates: candidates.clone(),
                            bias,
                            ep,
                            n_in: step.n_in,
                            n_out: step.n_out,
                        };
                        Pass::forward(kernel, binds)
                    }
                };
                b.passes.push(pass);
                cur = dst;
                if separate || apart {
                    if let Some(bias) = l.bias().filter(|_| separate) {
                        b.elementwise(&bias_add(bias), step.n_out, cur);
                    }
                    if !step.epilogue.is_identity() {
                        b.elementwise(&step.epilogue, step.n_out, cur);
                    }
                }
                i += usize::from(fused.is_some());
            }
            StepOp::Row(op) => {
                let split = !step.epilogue.is_identity()
                    && (separate || !epilogue::compile(&step.epilogue, 1).fusable());
                let expr = if split {
                    Expr::identity()
                } else {
                    step.epilogue.clone()
                };
                let ep = epilogue::compile(&expr, step.n_out);
                let ep_t = b.epilogue(&ep);
                let binds = vec![(row::Y.name, cur), (row::EP.name, ep_t)];
                let width = step.n_out;
                b.passes.push(Pass::forward(Row { op, ep, width }, binds));
                if split {
                    b.elementwise(&step.epilogue, step.n_out, cur);
                }
            }
            StepOp::Elementwise => b.elementwise(&step.epilogue, step.n_out, cur),
        }
        i += 1;
    }
    let n_out = steps.last().map_or(n_in, |s| s.n_out);
    let chunk_rows = chunk_rows(widest4, rows_per_group, max_binding, caps)?;
    Ok(Plan {
        tensors: b.tensors,
        passes: b.passes,
        input,
        copy_input: copy_input.then_some(acts[0]),
        output: cur,
        chunk_rows,
        n_in,
        n_out,
    })
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
    // Exact, so the message never shows a saturated count.
    let bytes = u128::from(pack::f32_bytes(rows)) * cols as u128;
    if bytes > u128::from(max_binding) {
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
/// Linear kernel's grid (`rows_per_group` rows per workgroup at least) the device's limit.
fn chunk_rows(
    widest4: usize,
    rows_per_group: u32,
    max_binding: u64,
    caps: &DeviceCaps,
) -> Result<usize> {
    let row_bytes = pack::f32_bytes(widest4 * 4);
    let rows_by_binding = max_binding.saturating_sub(WORKSPACE_SLACK) / row_bytes;
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

    /// Each pass's kernel, as its Debug form names it.
    fn kinds(p: &Plan) -> Vec<String> {
        p.passes
            .iter()
            .map(|p| {
                let d = format!("{:?}", p.kernel);
                // A field's value: up to the first comma outside brackets.
                let field = |name: &str| {
                    let at = d.find(&format!("{name}: ")).expect("the field") + name.len() + 2;
                    let mut depth = 0i32;
                    let end = d[at..].char_indices().find(|&(_, c)| {
                        depth += match c {
                            '{' | '[' | '(' => 1,
                            '}' | ']' | ')' => -1,
                            _ => 0,
                        };
                        depth < 0 || (depth == 0 && c == ',')
                    });
                    d[at..at + end.map_or(d.len() - at, |e| e.0)].to_string()
                };
                match d.split([' ', '{']).next() {
                    Some("Windowed") if field("row_op") == "0" => "windowed".into(),
                    Some("Windowed") => "windowed+row".into(),
                    Some("BufferLinear") => field("candidates"),
                    Some("Row") => field("op"),
                    Some("Elementwise") => "elementwise".into(),
                    other => format!("{other:?}"),
                }
            })
            .collect()
    }

    /// The (x, y) tensors of each pass (x = y for passes in place).
    fn ends(p: &Plan) -> Vec<(TensorId, TensorId)> {
        p.passes
            .iter()
            .map(|q| {
                let y = q.tensor("y").expect("a y binding");
                (q.tensor("x").unwrap_or(y), y)
            })
            .collect()
    }

    #[test]
    fn software_adapters_run_the_windowed_kernel_and_fuse_a_narrow_softmax() {
        let m = mnist();
        let p = plan(&steps(&m), 784, &caps(true, true), GpuMlpOptions::default()).unwrap();
        assert_eq!(kinds(&p), ["windowed", "windowed", "windowed+row"]);
        let (input, a0, a1) = (TensorId(0), TensorId(1), TensorId(2));
        assert_eq!(p.input, input);
        assert_eq!(ends(&p), [(input, a0), (a0, a1), (a1, a0)]);
        assert_eq!(p.output, a0);
        assert_eq!(p.tensors[a1.0].name, "act1");
        // Without subgroups the softmax is a row pass of its own, in place.
        let p = plan(
            &steps(&m),
            784,
            &caps(true, false),
            GpuMlpOptions::default(),
        )
        .unwrap();
        assert_eq!(kinds(&p), ["windowed", "windowed", "windowed", "Softmax"]);
        assert_eq!(ends(&p)[3].0, ends(&p)[3].1);
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
        assert!(format!("{:?}", p.passes[0].kernel).contains("bias: false"));
    }

    #[test]
    fn a_leading_elementwise_pass_works_on_a_copy_of_the_input() {
        let m = Mlp::new(vec![
            Module::BatchNorm1d(crate::model::BatchNorm1d::default_init(3)),
            Module::Linear(Linear::new(3, 2, vec![0.5; 6], None).unwrap()),
        ])
        .unwrap();
        let p = plan(&steps(&m), 3, &caps(true, true), GpuMlpOptions::default()).unwrap();
        let (a0, a1) = (TensorId(1), TensorId(2));
        assert_eq!(p.copy_input, Some(a0));
        assert_eq!(ends(&p), [(a0, a0), (a0, a1)]);
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
