//! The device memory one call runs in, and its replays: a [`Workspace`] holds a program's
//! per-row tensors (the input, the activations) and a readback buffer, sized for a number of
//! rows, with a bind group per pass built once; a [`Replay`] is the list of dispatches (pipeline,
//! bind group, dynamic offsets, grid) for one batch size, made the first time that size is seen
//! and replayed from then on. Nothing on the hot path creates a pipeline, a bind group or a
//! buffer.
//!
//! Each pass's bind group binds every slot of its kernel to the tensor the pass names for it,
//! by the slot's name: the workspace knows no kernel.
//!
//! Uniform blocks (the dimensions each dispatch reads) live in an arena and are never rewritten
//! once written: a command buffer the application recorded with [`GpuMlp::encode`] but has not
//! submitted yet still reads the values it was recorded with. When the arena is full a new one
//! is made (the old one lives on while recorded commands use it).
//!
//! [`GpuMlp::encode`]: super::GpuMlp::encode

use std::collections::HashMap;
use std::sync::Arc;

use crate::gpu::kernels::copy::{self, Copy, Direction};
use crate::gpu::kernels::{self, DIMS, DIMS_BYTES, Dispatch, Kernel, SlotKind, window};
use crate::gpu::pack;
use crate::gpu::pass::Pass;
use crate::gpu::program::{Program, Resource};
use crate::gpu::tensor::{Extent, TensorId};

/// Blocks the first arena holds; it doubles when full, up to [`ARENA_MAX_BLOCKS`].
const ARENA_BLOCKS: u64 = 64;
/// The largest arena: past it, a full arena is replaced by a fresh one of the same size (and
/// the replays made so far are forgotten).
const ARENA_MAX_BLOCKS: u64 = 16_384;

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
    /// Per tensor of the plan: this workspace's buffer of a per-row tensor.
    rows: Vec<Option<wgpu::Buffer>>,
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
    /// Rows of the input uploaded by [`GpuMlp::prepare`](super::GpuMlp::prepare).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) prepared_rows: Option<usize>,
}

/// Application buffers whose bind groups are kept (most recent first).
const APP_GROUPS: usize = 4;

impl Workspace {
    /// Buffers for `rows` rows of `program`.
    pub(crate) fn new(program: &Program, rows: usize) -> Self {
        let inner = &program.ctx.inner;
        let device = &inner.device;
        let buffer = |label: &str, vec4s: usize, usage: wgpu::BufferUsages, slack: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: pack::f32_bytes(rows * vec4s * 4).max(16) + slack,
                usage,
                mapped_at_creation: false,
            })
        };
        // Rows are also read through the windowed kernel's 64 KiB uniform windows, which may
        // start at any row: the plan's slack keeps the last window inside the buffer.
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::UNIFORM
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let per_row: Vec<Option<wgpu::Buffer>> = program
            .plan
            .tensors
            .iter()
            .map(|t| match t.extent {
                Extent::Rows { vec4s, slack } => Some(buffer(&t.name, vec4s, usage, slack)),
                _ => None,
            })
            .collect();
        let staging = buffer(
            "readback",
            pack::vec4s(program.plan.n_out),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            0,
        );
        let align = u64::from(inner.limits.min_uniform_buffer_offset_alignment).max(1);
        let stride = DIMS_BYTES.next_multiple_of(align);
        let buffers = per_row.iter().flatten().count() as u64 + 2;
        let mut ws = Workspace {
            capacity_rows: rows,
            rows: per_row,
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
        ws.groups = ws.pass_groups(program);
        program.count_allocations(buffers + program.plan.passes.len() as u64);
        ws
    }

    /// The buffer of tensor `id`: this workspace's (per-row tensors) or the program's.
    pub(crate) fn buffer<'a>(&'a self, program: &'a Program, id: TensorId) -> &'a wgpu::Buffer {
        match (&self.rows[id.0], program.resource(id)) {
            (Some(b), _) | (None, Some(Resource::Buffer(b))) => b,
            _ => panic!("tensor {id:?} is not a buffer"),
        }
    }

    /// The buffer the rows are uploaded to.
    pub(crate) fn input<'a>(&'a self, program: &'a Program) -> &'a wgpu::Buffer {
        self.buffer(program, program.plan.input)
    }

    /// The buffer the output rows are in.
    pub(crate) fn output<'a>(&'a self, program: &'a Program) -> &'a wgpu::Buffer {
        self.buffer(program, program.plan.output)
    }

    /// One bind group per pass: each slot of its kernel bound to the tensor the pass names for
    /// it (the uniform block to the arena).
    fn pass_groups(&self, program: &Program) -> Vec<wgpu::BindGroup> {
        program
            .plan
            .passes
            .iter()
            .map(|p| self.pass_group(program, p))
            .collect()
    }

    fn pass_group(&self, program: &Program, pass: &Pass) -> wgpu::BindGroup {
        let inner = &program.ctx.inner;
        let slots = pass.kernel.slots();
        let entries: Vec<_> = slots
            .iter()
            .map(|slot| {
                if slot.name == DIMS {
                    return (*slot, window(&self.arena, DIMS_BYTES));
                }
                let id = pass
                    .tensor(slot.name)
                    .unwrap_or_else(|| panic!("the plan binds no tensor to `{}`", slot.name));
                let resource = match (slot.kind, program.resource(id)) {
                    (SlotKind::Texture(_), Some(Resource::Texture(view))) => {
                        wgpu::BindingResource::TextureView(view)
                    }
                    (SlotKind::Window(bytes), _) => window(self.buffer(program, id), bytes),
                    _ => self.buffer(program, id).as_entire_binding(),
                };
                (*slot, resource)
            })
            .collect();
        let layout = inner.kernels.layout(&inner.device, slots);
        kernels::bind_group(&inner.device, "pass", &layout, &entries)
    }

    /// The bind groups copying between the application's buffers and this workspace.
    pub(crate) fn app_groups(
        &mut self,
        program: &Program,
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
        let device = &program.ctx.inner.device;
        let layout = program.ctx.inner.kernels.layout(device, copy::SLOTS);
        let dims = window(&self.arena, DIMS_BYTES);
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
            make(input, self.input(program)),
            make(self.output(program), output),
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
    pub(crate) fn replay(&mut self, program: &Program, rows: usize, ends: Ends) -> Arc<Replay> {
        if let Some(r) = self.replays.get(&(rows, ends)) {
            return r.clone();
        }
        let max_groups = program
            .ctx
            .inner
            .limits
            .max_compute_workgroups_per_dimension;
        let plan = &program.plan;
        // (bind group, pipeline, dispatch) of every atom, the copies of an encode around them.
        let mut all: Vec<(Group, &wgpu::ComputePipeline, Dispatch)> = Vec::new();
        if let Ends::App { row0 } = ends {
            let pack = Copy {
                dir: Direction::Pack,
                cols: plan.n_in,
                row0,
            };
            let d = pack.dispatches(rows, max_groups);
            all.extend(d.into_iter().map(|d| (Group::Pack, &program.copies[0], d)));
        }
        for (i, p) in plan.passes.iter().enumerate() {
            let d = p.kernel.dispatches(rows, max_groups);
            all.extend(
                d.into_iter()
                    .map(|d| (Group::Pass(i), &program.pipelines[i][d.pipeline], d)),
            );
        }
        if let Ends::App { row0 } = ends {
            let unpack = Copy {
                dir: Direction::Unpack,
                cols: plan.n_out,
                row0,
            };
            let d = unpack.dispatches(rows, max_groups);
            all.extend(
                d.into_iter()
                    .map(|d| (Group::Unpack, &program.copies[1], d)),
            );
        }
        if self.arena_used + all.len() as u64 > self.arena_blocks {
            self.new_arena(program, all.len() as u64);
        }
        let queue = &program.ctx.inner.queue;
        let atoms = all
            .into_iter()
            .map(|(group, pipeline, d)| {
                let mut offsets = vec![self.put(queue, &d.dims)];
                offsets.extend_from_slice(&d.windows);
                Atom {
                    group,
                    pipeline: pipeline.clone(),
                    offsets,
                    grid: d.grid,
                }
            })
            .collect();
        let replay = Arc::new(Replay { rows, atoms });
        self.replays.insert((rows, ends), replay.clone());
        replay
    }

    /// A fresh, larger arena (old replays and bind groups are dropped; commands recorded with
    /// them keep the old arena alive).
    fn new_arena(&mut self, program: &Program, need: u64) {
        let blocks = (self.arena_blocks * 2).clamp(need, ARENA_MAX_BLOCKS.max(need));
        self.arena = arena(&program.ctx.inner.device, blocks, self.stride);
        self.arena_blocks = blocks;
        self.arena_used = 0;
        self.replays.clear();
        self.app_groups.clear();
        self.groups = self.pass_groups(program);
        program.count_allocations(1 + program.plan.passes.len() as u64);
    }

    /// Writes a uniform block into the arena and returns its offset.
    fn put(&mut self, queue: &wgpu::Queue, bytes: &[u8]) -> u32 {
        let offset = self.arena_used * self.stride;
        self.arena_used += 1;
        queue.write_buffer(&self.arena, offset, bytes);
        offset as u32
    }

    /// Records a replay: the input copy the plan asks for, then every dispatch in one compute
    /// pass. `app`: the copy bind groups of an encode into application buffers.
    pub(crate) fn record(
        &self,
        program: &Program,
        replay: &Replay,
        encoder: &mut wgpu::CommandEncoder,
        app: Option<&[wgpu::BindGroup; 2]>,
    ) {
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
        match program.plan.copy_input {
            Some(to) => {
                let n_in = program.plan.n_in;
                let bytes = pack::f32_bytes(replay.rows * pack::vec4s(n_in) * 4);
                pass_of(encoder, &replay.atoms[..split]);
                let (from, to) = (self.input(program), self.buffer(program, to));
                encoder.copy_buffer_to_buffer(from, 0, to, 0, bytes);
                pass_of(encoder, &replay.atoms[split..]);
            }
            None => pass_of(encoder, &replay.atoms),
        }
    }
}

fn arena(device: &wgpu::Device, blocks: u64, stride: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("uniform arena"),
        size: blocks * stride,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}
