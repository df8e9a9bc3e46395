//! The device memory one forward pass runs in, and its replays: a [`Workspace`] holds the input,
//! the two activation buffers and the readback buffer of a model, sized for a number of rows,
//! with a bind group per pass built once; a [`Replay`] is the list of dispatches (pipeline, bind
//! group, dynamic offsets, grid) for one batch size, made the first time that size is seen and
//! replayed from then on. Nothing on the hot path creates a pipeline, a bind group or a buffer.
//!
//! Uniform blocks (the dimensions each dispatch reads) live in an arena and are never rewritten
//! once written: a command buffer the application recorded with [`GpuMlp::encode`] but has not
//! submitted yet still reads the values it was recorded with. When the arena is full a new one
//! is made (the old one lives on while recorded commands use it).
//!
//! [`GpuMlp::encode`]: super::GpuMlp::encode

use std::collections::HashMap;
use std::sync::Arc;

use crate::gpu::kernels::copy::{self, Direction};
use crate::gpu::kernels::linear::windowed::{self, SMALL_ROWS};
use crate::gpu::kernels::linear::{self, LinearDims};
use crate::gpu::kernels::{self, Slot, elementwise, row, window};
use crate::gpu::model::{GpuMlp, Kind, UploadedPass};
use crate::gpu::pack;
use crate::gpu::plan::{Buf, WORKSPACE_SLACK};

/// Blocks the first arena holds; it doubles when full, up to [`ARENA_MAX_BLOCKS`].
const ARENA_BLOCKS: u64 = 64;
/// The largest arena: past it, a full arena is replaced by a fresh one of the same size (and
/// the replays made so far are forgotten).
const ARENA_MAX_BLOCKS: u64 = 16_384;
/// Bytes reserved per uniform block (every struct of the kernels fits).
const BLOCK_BYTES: u64 = 32;

/// One dispatch of a replay.
#[derive(Debug)]
pub(crate) struct Atom {
    /// Which bind group: a pass index, or the copies of an encode.
    pub(crate) group: Group,
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) offsets: Vec<u32>,
    pub(crate) grid: (u32, u32),
}

/// Which bind group an atom uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Group {
    Pass(usize),
    /// The application's input into the workspace input.
    Pack,
    /// The workspace output into the application's output.
    Unpack,
}

/// The dispatches of one batch size (and, for an encode into application buffers, one chunk
/// offset).
#[derive(Debug)]
pub(crate) struct Replay {
    pub(crate) rows: usize,
    pub(crate) atoms: Vec<Atom>,
}

/// Where a replay's input comes from and its output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Ends {
    /// The workspace's own input and readback buffers.
    Own,
    /// An application's buffers, this chunk starting at row `row0`.
    App { row0: usize },
}

/// Device buffers reused across calls, sized for `capacity_rows`.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub(crate) capacity_rows: usize,
    pub(crate) input: wgpu::Buffer,
    pub(crate) acts: [wgpu::Buffer; 2],
    pub(crate) staging: wgpu::Buffer,
    arena: wgpu::Buffer,
    arena_blocks: u64,
    arena_used: u64,
    /// Bytes between blocks (the device's uniform offset alignment).
    stride: u64,
    /// Per pass, the bind group (against the current arena).
    groups: Vec<wgpu::BindGroup>,
    replays: HashMap<(usize, Ends), Arc<Replay>>,
    /// Bind groups of encodes into application buffers, by (input, output) buffer.
    app_groups: Vec<((wgpu::Buffer, wgpu::Buffer), [wgpu::BindGroup; 2])>,
    /// Rows of the input uploaded by [`GpuMlp::prepare`] (resident timing).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) prepared_rows: Option<usize>,
}

/// Application buffers whose bind groups are kept (most recent first).
const APP_GROUPS: usize = 4;

impl Workspace {
    /// Buffers for `rows` rows of `model`.
    pub(crate) fn new(model: &GpuMlp, rows: usize) -> Self {
        let inner = &model.ctx.inner;
        let device = &inner.device;
        let buffer = |label: &str, vec4s: usize, usage: wgpu::BufferUsages, slack: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: pack::f32_bytes(rows * vec4s * 4).max(16) + slack,
                usage,
                mapped_at_creation: false,
            })
        };
        // Activations are also read through the windowed kernel's 64 KiB uniform windows, which
        // may start at any row: the slack keeps the last window inside the buffer.
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM;
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let widest = model.widest4;
        let input = buffer(
            "input",
            pack::vec4s(model.n_in),
            usage | copy,
            WORKSPACE_SLACK,
        );
        let acts = [
            buffer("act0", widest, usage | copy, WORKSPACE_SLACK),
            buffer("act1", widest, usage | copy, WORKSPACE_SLACK),
        ];
        let staging = buffer(
            "readback",
            pack::vec4s(model.n_out),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            0,
        );
        let align = u64::from(inner.limits.min_uniform_buffer_offset_alignment).max(1);
        let stride = BLOCK_BYTES.next_multiple_of(align);
        let mut ws = Workspace {
            capacity_rows: rows,
            input,
            acts,
            staging,
            arena: arena(device, ARENA_BLOCKS, stride),
            arena_blocks: ARENA_BLOCKS,
            arena_used: 0,
            stride,
            groups: Vec::new(),
            replays: HashMap::new(),
            app_groups: Vec::new(),
            #[cfg(not(target_arch = "wasm32"))]
            prepared_rows: None,
        };
        ws.groups = ws.pass_groups(model);
        model.count_allocations(5 + model.passes.len() as u64);
        ws
    }

    fn buf(&self, b: Buf) -> &wgpu::Buffer {
        match b {
            Buf::Input => &self.input,
            Buf::Act(i) => &self.acts[i],
        }
    }

    /// The buffer the model's output is in.
    pub(crate) fn output(&self, model: &GpuMlp) -> &wgpu::Buffer {
        self.buf(model.output)
    }

    /// One bind group per pass, every resource at its slot.
    fn pass_groups(&self, model: &GpuMlp) -> Vec<wgpu::BindGroup> {
        let device = &model.ctx.inner.device;
        let kernels = &model.ctx.inner.kernels;
        let dims = |size: u64| window(&self.arena, size);
        model
            .passes
            .iter()
            .map(|p| {
                let src = self.buf(p.src);
                let dst = self.buf(p.dst);
                let ep = p.ep.as_entire_binding();
                let (slots, entries): (&'static [Slot], Vec<(Slot, wgpu::BindingResource<'_>)>) =
                    match &p.kind {
                        Kind::Windowed {
                            weight,
                            bias,
                            slots,
                            ..
                        } => {
                            let x = if model.ctx.inner.subgroups {
                                src.as_entire_binding()
                            } else {
                                window(src, windowed::WINDOW_BYTES)
                            };
                            let mut e = vec![
                                (slots[0], dims(BLOCK_BYTES)),
                                (slots[1], x.clone()),
                                (slots[2], wgpu::BindingResource::TextureView(weight)),
                                (slots[3], bias.as_entire_binding()),
                                (slots[4], dst.as_entire_binding()),
                                (slots[5], ep),
                            ];
                            if let Some(hi) = slots.get(6) {
                                e.push((*hi, x));
                            }
                            (slots, e)
                        }
                        Kind::Buffer { weight, bias, .. } => (
                            linear::BUFFER_SLOTS,
                            vec![
                                (linear::DIMS, dims(BLOCK_BYTES)),
                                (linear::X, src.as_entire_binding()),
                                (linear::WT, weight.as_entire_binding()),
                                (linear::B, bias.as_entire_binding()),
                                (linear::Y, dst.as_entire_binding()),
                                (linear::EP, ep),
                            ],
                        ),
                        Kind::Row { .. } => (
                            row::SLOTS,
                            vec![
                                (row::SLOTS[0], dims(BLOCK_BYTES)),
                                (row::Y, dst.as_entire_binding()),
                                (row::EP, ep),
                            ],
                        ),
                        Kind::Elementwise { .. } => (
                            elementwise::SLOTS,
                            vec![
                                (elementwise::SLOTS[0], dims(BLOCK_BYTES)),
                                (elementwise::Y, dst.as_entire_binding()),
                                (elementwise::EP, ep),
                            ],
                        ),
                    };
                let layout = kernels.layout(device, slots);
                kernels::bind_group(device, "pass", &layout, &entries)
            })
            .collect()
    }

    /// The bind groups copying between the application's buffers and this workspace.
    pub(crate) fn app_groups(
        &mut self,
        model: &GpuMlp,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> [wgpu::BindGroup; 2] {
        let key = (input.clone(), output.clone());
        if let Some(i) = self.app_groups.iter().position(|(k, _)| *k == key) {
            let hit = self.app_groups.remove(i);
            let groups = hit.1.clone();
            self.app_groups.insert(0, hit);
            return groups;
        }
        let device = &model.ctx.inner.device;
        let layout = model.ctx.inner.kernels.layout(device, copy::SLOTS);
        let dims = window(&self.arena, BLOCK_BYTES);
        // A storage binding's size must be a multiple of 4; an application's buffer need not
        // be (its rows are f32s from offset 0, so the last partial word is never touched).
        fn whole_words(b: &wgpu::Buffer) -> wgpu::BindingResource<'_> {
            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: b,
                offset: 0,
                size: wgpu::BufferSize::new(b.size() / 4 * 4),
            })
        }
        let make = |src: &wgpu::Buffer, dst: &wgpu::Buffer| {
            let entries = [
                (copy::SLOTS[0], dims.clone()),
                (copy::SRC, whole_words(src)),
                (copy::DST, whole_words(dst)),
            ];
            kernels::bind_group(device, "copy", &layout, &entries)
        };
        let groups = [
            make(input, &self.input),
            make(self.buf(model.output), output),
        ];
        self.app_groups.insert(0, (key, groups.clone()));
        self.app_groups.truncate(APP_GROUPS);
        groups
    }

    /// Drops the kept bind groups of these application buffers (after wgpu refused them).
    pub(crate) fn forget_app_groups(&mut self, input: &wgpu::Buffer, output: &wgpu::Buffer) {
        self.app_groups
            .retain(|((i, o), _)| !(i == input && o == output));
    }

    /// The replay for `rows` (at most the capacity) with these ends, made on first use.
    pub(crate) fn replay(&mut self, model: &GpuMlp, rows: usize, ends: Ends) -> Arc<Replay> {
        if let Some(r) = self.replays.get(&(rows, ends)) {
            return r.clone();
        }
        let blocks = blocks_needed(model, rows, ends);
        if self.arena_used + blocks > self.arena_blocks {
            self.new_arena(model, blocks);
        }
        let replay = Arc::new(self.make_replay(model, rows, ends));
        self.replays.insert((rows, ends), replay.clone());
        replay
    }

    /// A fresh, larger arena (old replays and bind groups are dropped; commands recorded with
    /// them keep the old arena alive).
    fn new_arena(&mut self, model: &GpuMlp, need: u64) {
        let blocks = (self.arena_blocks * 2).clamp(need, ARENA_MAX_BLOCKS.max(need));
        self.arena = arena(&model.ctx.inner.device, blocks, self.stride);
        self.arena_blocks = blocks;
        self.arena_used = 0;
        self.replays.clear();
        self.app_groups.clear();
        self.groups = self.pass_groups(model);
        model.count_allocations(1 + model.passes.len() as u64);
    }

    /// Writes a uniform block into the arena and returns its offset.
    fn put<T: bytemuck::Pod>(&mut self, queue: &wgpu::Queue, value: &T) -> u32 {
        let offset = self.arena_used * self.stride;
        self.arena_used += 1;
        queue.write_buffer(&self.arena, offset, bytemuck::bytes_of(value));
        offset as u32
    }

    fn make_replay(&mut self, model: &GpuMlp, rows: usize, ends: Ends) -> Replay {
        let queue = &model.ctx.inner.queue;
        let max_groups = model.ctx.inner.limits.max_compute_workgroups_per_dimension;
        let mut atoms = Vec::new();
        if let Ends::App { row0 } = ends {
            let (d, grid) = copy::dims(Direction::Pack, rows, model.n_in, row0, max_groups);
            atoms.push(Atom {
                group: Group::Pack,
                pipeline: model.copies[0].clone(),
                offsets: vec![self.put(queue, &d)],
                grid,
            });
        }
        for (i, p) in model.passes.iter().enumerate() {
            let n4 = pack::vec4s(p.n_out);
            let k4 = pack::vec4s(p.n_in) as u32;
            match &p.kind {
                Kind::Windowed {
                    geometry,
                    wg,
                    layout,
                    pipelines,
                    ..
                } => {
                    let r = geometry.dispatch_rows;
                    let x_row_bytes = pack::f32_bytes(pack::vec4s(p.n_in) * 4);
                    for w in 0..geometry.dispatches(rows) {
                        let valid = (rows - w * r).min(r);
                        let (block, pipeline) = pipelines
                            .iter()
                            .find(|(n, _)| valid <= *n as usize)
                            .unwrap_or_else(|| pipelines.last().expect("a pipeline per block"));
                        let dims = LinearDims {
                            rows: valid as u32,
                            row_base: (w * r) as u32,
                            k4,
                            n4: n4 as u32,
                            n_out: p.n_out as u32,
                            wt_n4: (pack::weight_cols(p.n_out) / 4) as u32,
                            tex_w: layout.width() as u32,
                            panel_rows: layout.panel_rows as u32,
                        };
                        let mut offsets = vec![self.put(queue, &dims)];
                        if !model.ctx.inner.subgroups {
                            let x = w as u64 * r as u64 * x_row_bytes;
                            let hi = geometry.half().map_or(0, |h| u64::from(h) * x_row_bytes);
                            offsets.extend([x as u32, (x + hi) as u32]);
                        }
                        atoms.push(Atom {
                            group: Group::Pass(i),
                            pipeline: pipeline.clone(),
                            offsets,
                            grid: windowed::grid(*wg, n4, valid, *block),
                        });
                    }
                }
                Kind::Buffer { wt_n4, kernels, .. } => {
                    let candidates: Vec<_> = kernels.iter().map(|k| k.0).collect();
                    let chosen = linear::pick(&candidates, rows, p.n_out);
                    let (kernel, pipeline) = kernels
                        .iter()
                        .find(|k| k.0 == chosen)
                        .expect("pick returns a candidate");
                    let dims = LinearDims {
                        rows: rows as u32,
                        k4,
                        n4: n4 as u32,
                        n_out: p.n_out as u32,
                        wt_n4: *wt_n4,
                        ..LinearDims::default()
                    };
                    let b = kernel.buffer_kernel().expect("a storage-buffer kernel");
                    atoms.push(Atom {
                        group: Group::Pass(i),
                        pipeline: pipeline.clone(),
                        offsets: vec![self.put(queue, &dims)],
                        grid: b.grid(rows as u64, n4 as u64),
                    });
                }
                Kind::Row { op, pipeline } => {
                    let (d, grid) = row::dims(*op, rows, p.n_out, max_groups);
                    atoms.push(Atom {
                        group: Group::Pass(i),
                        pipeline: pipeline.clone(),
                        offsets: vec![self.put(queue, &d)],
                        grid,
                    });
                }
                Kind::Elementwise { pipeline } => {
                    let (d, grid) = elementwise::dims(rows, p.n_out, max_groups);
                    atoms.push(Atom {
                        group: Group::Pass(i),
                        pipeline: pipeline.clone(),
                        offsets: vec![self.put(queue, &d)],
                        grid,
                    });
                }
            }
        }
        if let Ends::App { row0 } = ends {
            let (d, grid) = copy::dims(Direction::Unpack, rows, model.n_out, row0, max_groups);
            atoms.push(Atom {
                group: Group::Unpack,
                pipeline: model.copies[1].clone(),
                offsets: vec![self.put(queue, &d)],
                grid,
            });
        }
        Replay { rows, atoms }
    }

    /// Records a replay: the input copy the plan asks for, then every dispatch in one compute
    /// pass. `app`: the copy bind groups of an encode into application buffers.
    pub(crate) fn record(
        &self,
        model: &GpuMlp,
        replay: &Replay,
        encoder: &mut wgpu::CommandEncoder,
        app: Option<&[wgpu::BindGroup; 2]>,
    ) {
        let input_bytes = pack::f32_bytes(replay.rows * pack::vec4s(model.n_in) * 4);
        let pass_of = |encoder: &mut wgpu::CommandEncoder, atoms: &[Atom]| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("mlp forward"),
                timestamp_writes: None,
            });
            for a in atoms {
                let group = match a.group {
                    Group::Pass(i) => &self.groups[i],
                    Group::Pack => &app.expect("an encode's copies")[0],
                    Group::Unpack => &app.expect("an encode's copies")[1],
                };
                pass.set_pipeline(&a.pipeline);
                pass.set_bind_group(0, group, &a.offsets);
                pass.dispatch_workgroups(a.grid.0, a.grid.1, 1);
            }
        };
        // The plan's first pass works in place on a copy of the input (which must stay as it
        // is); an encode's pack dispatch comes before that copy.
        let split = usize::from(app.is_some());
        if model.copy_input {
            pass_of(encoder, &replay.atoms[..split]);
            encoder.copy_buffer_to_buffer(&self.input, 0, &self.acts[0], 0, input_bytes);
            pass_of(encoder, &replay.atoms[split..]);
        } else {
            pass_of(encoder, &replay.atoms);
        }
    }
}

/// Uniform blocks a replay needs.
fn blocks_needed(model: &GpuMlp, rows: usize, ends: Ends) -> u64 {
    let copies = if ends == Ends::Own { 0 } else { 2 };
    model
        .passes
        .iter()
        .map(|p: &UploadedPass| match &p.kind {
            Kind::Windowed { geometry, .. } => geometry.dispatches(rows) as u64,
            _ => 1,
        })
        .sum::<u64>()
        + copies
}

fn arena(device: &wgpu::Device, blocks: u64, stride: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("uniform arena"),
        size: blocks * stride,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// The row blocks of the windowed kernel's pipelines, smallest first.
pub(crate) fn windowed_blocks() -> impl Iterator<Item = u32> {
    SMALL_ROWS.into_iter().chain([windowed::BLOCK_ROWS])
}
