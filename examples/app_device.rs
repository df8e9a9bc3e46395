//! An application that owns the GPU: it opens its own device, fills an input buffer with a
//! compute pass of its own, runs the network on that buffer inside its own command encoder with
//! `GpuMlp::encode`, and reads the result itself. One submit for both; nothing is copied through
//! the host between the application's pass and the network.
//!
//! `cargo run --example app_device`
use wgpu_mlp::gpu::{GpuContext, GpuMlp};
use wgpu_mlp::{Activation, Mlp, wgpu};

/// The application's own kernel: x[i] = sin(i · 0.01).
const FILL: &str = r#"
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64)
fn fill(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < arrayLength(&x) {
        x[id.x] = sin(f32(id.x) * 0.01);
    }
}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The application's device, as it would open it for its renderer or simulation.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))?;

    // The network, on that device (no second device is opened).
    let ctx = GpuContext::from_wgpu(&adapter, device.clone(), queue.clone())?;
    let model = Mlp::builder(13)
        .layer(31, Activation::Gelu)
        .layer(3, Activation::Softmax)
        .seed(7)
        .build()?;
    let gpu = GpuMlp::new(&ctx, &model)?;

    let batch = 100;
    let storage = |label, bytes: u64, extra| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | extra,
            mapped_at_creation: false,
        })
    };
    let input = storage("input", batch * 13 * 4, wgpu::BufferUsages::empty());
    let output = storage("output", batch * 3 * 4, wgpu::BufferUsages::COPY_SRC);
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: batch * 3 * 4,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });

    // The application's pass that makes the input.
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("fill"),
        source: wgpu::ShaderSource::Wgsl(FILL.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("fill"),
        layout: None,
        module: &module,
        entry_point: Some("fill"),
        compilation_options: Default::default(),
        cache: None,
    });
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: input.as_entire_binding(),
        }],
    });

    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups((batch as u32 * 13).div_ceil(64), 1, 1);
    }
    // The network reads `input` and writes `output` in the same encoder.
    gpu.encode(&mut encoder, &input, &output, batch as usize)?;
    encoder.copy_buffer_to_buffer(&output, 0, &readback, 0, batch * 3 * 4);
    queue.submit([encoder.finish()]);

    readback
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device.poll(wgpu::PollType::wait_indefinitely())?;
    let probs: Vec<f32> = bytemuck::cast_slice(&readback.slice(..).get_mapped_range()?).to_vec();
    readback.unmap();
    for (i, row) in probs.chunks(3).take(3).enumerate() {
        println!("row {i}: {row:?} (sum {:.6})", row.iter().sum::<f32>());
    }
    Ok(())
}
