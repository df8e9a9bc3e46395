//! The crate inside applications: the application's own device (`GpuContext::from_wgpu`), its
//! buffers and command encoder (`GpuMlp::encode`), awaitable calls (`forward_async`, several at
//! once) and slices (`forward_slice`, `forward_into`). Every result is checked against
//! `forward` on the same model, bit for bit (the same kernels run), and `forward` is checked
//! against the CPU reference elsewhere.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::{ctx, gpu_with, input, model};
use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions};
use wgpu_mlp::{Activation, Error, Matrix, wgpu};

/// An odd-shaped model: widths off every vec4 and tile, a softmax head.
fn odd_model() -> wgpu_mlp::Mlp {
    model(&[7, 33, 5], &[Activation::Tanh, Activation::Softmax], 3)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn slices_give_exactly_what_forward_gives() {
    let m = odd_model();
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    for batch in [0, 1, 3, 65] {
        let x = input(batch, 7, batch as u64, 2.0);
        let want = gpu.forward(&x).unwrap();
        let got = gpu.forward_slice(x.as_slice(), batch).unwrap();
        assert_eq!(bits(&got), bits(want.as_slice()), "forward_slice b{batch}");
        let mut out = vec![f32::NAN; batch * 5];
        gpu.forward_into(x.as_slice(), batch, &mut out).unwrap();
        assert_eq!(bits(&out), bits(want.as_slice()), "forward_into b{batch}");
    }
    // Lengths that do not fit are shape errors, before any GPU work.
    let x = input(3, 7, 1, 1.0);
    let e = gpu.forward_slice(&x.as_slice()[..20], 3).unwrap_err();
    assert!(matches!(e, Error::Shape(_)), "{e}");
    let mut short = vec![0.0; 14];
    let e = gpu.forward_into(x.as_slice(), 3, &mut short).unwrap_err();
    assert!(
        matches!(e, Error::Shape(_)) && e.to_string().contains("15"),
        "{e}"
    );
    // A batch far past the slice is a shape error before the output is allocated (it used to
    // abort allocating `batch · out` values, or panic with "capacity overflow" on the CPU path).
    let cpu = wgpu_mlp::CpuMlp::new(&m).unwrap();
    for batch in [1 << 36, usize::MAX] {
        let e = gpu.forward_slice(x.as_slice(), batch).unwrap_err();
        assert!(matches!(e, Error::Shape(_)), "{e}");
        let e = cpu.forward_slice(x.as_slice(), batch).unwrap_err();
        assert!(matches!(e, Error::Shape(_)), "{e}");
    }
}

/// Polls every future on this one thread until all are ready (no thread blocks on the device:
/// the context's poller delivers the readbacks).
fn run_all<F: Future>(futures: Vec<F>, limit: Duration) -> Vec<F::Output> {
    struct Nop;
    impl Wake for Nop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Nop));
    let mut cx = Context::from_waker(&waker);
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let start = Instant::now();
    while outs.iter().any(Option::is_none) {
        assert!(
            start.elapsed() < limit,
            "futures did not finish in {limit:?}"
        );
        for (f, out) in futures.iter_mut().zip(&mut outs) {
            if out.is_none()
                && let Poll::Ready(v) = f.as_mut().poll(&mut cx)
            {
                *out = Some(v);
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    outs.into_iter().map(Option::unwrap).collect()
}

#[test]
fn concurrent_async_calls_each_get_their_own_result() {
    let m = odd_model();
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    let inputs: Vec<Matrix> = (0..8).map(|i| input(1 + 9 * i, 7, i as u64, 3.0)).collect();
    let wants: Vec<Matrix> = inputs.iter().map(|x| gpu.forward(x).unwrap()).collect();
    // Eight at once on one thread.
    let futures: Vec<_> = inputs.iter().map(|x| gpu.forward_async(x)).collect();
    for (i, (got, want)) in run_all(futures, Duration::from_secs(120))
        .into_iter()
        .zip(&wants)
        .enumerate()
    {
        assert_eq!(
            bits(got.unwrap().as_slice()),
            bits(want.as_slice()),
            "future {i}"
        );
    }
    // And from several threads, each with its own executor.
    std::thread::scope(|s| {
        for (x, want) in inputs.iter().zip(&wants) {
            let gpu = &gpu;
            s.spawn(move || {
                for _ in 0..5 {
                    let got = pollster::block_on(gpu.forward_async(x)).unwrap();
                    assert_eq!(bits(got.as_slice()), bits(want.as_slice()));
                }
            });
        }
    });
    // An error is a value: a wrong width.
    let bad = input(2, 6, 0, 1.0);
    let e = pollster::block_on(gpu.forward_async(&bad)).unwrap_err();
    assert!(matches!(e, Error::Shape(_)), "{e}");
}

#[test]
fn the_async_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let m = odd_model();
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    let x = input(2, 7, 0, 1.0);
    let f = gpu.forward_async(&x);
    assert_send(&f);
    let mut f = pin!(f);
    let y = pollster::block_on(f.as_mut()).unwrap();
    assert_eq!(y.shape(), [2, 5]);
}

#[test]
fn cancelled_async_calls_return_their_workspace_and_allocations_stay_flat() {
    // A future dropped before it is polled, after its submit, while its readback maps, or after
    // the map finished: each returns its workspace to the pool (the readback aborted), so after
    // warm-up nothing more is allocated and every later call gets the right numbers.
    let m = odd_model();
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    let x = input(9, 7, 3, 1.0);
    let expected = gpu.forward(&x).unwrap();
    let waker = std::task::Waker::noop();
    let cancel = |polls: usize, pause_us: u64| {
        let mut f = pin!(gpu.forward_async(&x));
        for _ in 0..polls {
            let polled = f.as_mut().poll(&mut std::task::Context::from_waker(waker));
            if polled.is_ready() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(pause_us));
        }
    };
    let stages = [(0, 0), (1, 0), (2, 0), (2, 2000), (5, 1000), (50, 500)];
    for &(polls, pause) in &stages {
        cancel(polls, pause);
    }
    let warm = gpu.workspace_allocations();
    for round in 0..40 {
        for &(polls, pause) in &stages {
            cancel(polls, pause);
        }
        if round % 10 == 0 {
            let y = pollster::block_on(gpu.forward_async(&x)).unwrap();
            assert_eq!(y.as_slice(), expected.as_slice(), "round {round}");
            assert_eq!(gpu.forward(&x).unwrap().as_slice(), expected.as_slice());
        }
    }
    assert_eq!(
        gpu.workspace_allocations(),
        warm,
        "240 cancelled calls allocated new workspaces"
    );
}

/// A STORAGE buffer of the application's holding `data`, readable back.
fn app_buffer(device: &wgpu::Device, queue: &wgpu::Queue, data: &[f32]) -> wgpu::Buffer {
    let b = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app"),
        size: (data.len() as u64 * 4).max(4).next_multiple_of(4),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    queue.write_buffer(&b, 0, bytemuck::cast_slice(data));
    b
}

/// Reads `n` f32 of `buffer` back (the application's own readback).
fn read_back(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    buffer: &wgpu::Buffer,
    n: usize,
) -> Vec<f32> {
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app readback"),
        size: (n as u64 * 4).max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, n as u64 * 4);
    queue.submit([enc.finish()]);
    staging.slice(..).map_async(wgpu::MapMode::Read, |_| {});
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    let v = bytemuck::cast_slice(&staging.slice(..).get_mapped_range().unwrap()).to_vec();
    staging.unmap();
    v
}

#[test]
fn encode_runs_on_the_applications_buffers_in_its_encoder() {
    // Chunks of at most a few rows: capped storage bindings force chunking within one encoder.
    let small = gpu_with(&GpuOptions {
        max_storage_binding_size: Some(256 * 1024),
        ..Default::default()
    });
    for ctx in [ctx().clone(), small] {
        let m = odd_model();
        let gpu = GpuMlp::new(&ctx, &m).unwrap();
        let (device, queue) = (ctx.device(), ctx.queue());
        for batch in [1, 5, 3 * gpu.chunk_rows().min(2000) + 7] {
            let x = input(batch, 7, batch as u64, 2.0);
            let want = gpu.forward(&x).unwrap();
            let a = app_buffer(device, queue, x.as_slice());
            let b = app_buffer(device, queue, &vec![f32::NAN; batch * 5]);
            let mut enc = device.create_command_encoder(&Default::default());
            gpu.encode(&mut enc, &a, &b, batch).unwrap();
            // Nothing ran yet: the application submits.
            queue.submit([enc.finish()]);
            let got = read_back(device, queue, &b, batch * 5);
            assert_eq!(bits(&got), bits(want.as_slice()), "encode b{batch}");
        }
        // Two calls with different batches recorded before one submit each keep their own
        // dimensions.
        let (x1, x2) = (input(2, 7, 11, 1.0), input(9, 7, 12, 1.0));
        let (a1, a2) = (
            app_buffer(device, queue, x1.as_slice()),
            app_buffer(device, queue, x2.as_slice()),
        );
        let (b1, b2) = (
            app_buffer(device, queue, &[0.0; 10]),
            app_buffer(device, queue, &[0.0; 45]),
        );
        let mut enc = device.create_command_encoder(&Default::default());
        gpu.encode(&mut enc, &a1, &b1, 2).unwrap();
        gpu.encode(&mut enc, &a2, &b2, 9).unwrap();
        queue.submit([enc.finish()]);
        assert_eq!(
            bits(&read_back(device, queue, &b1, 10)),
            bits(gpu.forward(&x1).unwrap().as_slice())
        );
        assert_eq!(
            bits(&read_back(device, queue, &b2, 45)),
            bits(gpu.forward(&x2).unwrap().as_slice())
        );
    }
}

#[test]
fn encode_checks_usages_and_sizes() {
    let m = odd_model();
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    let (device, queue) = (ctx().device(), ctx().queue());
    let good_in = app_buffer(device, queue, &[0.0; 14]);
    let good_out = app_buffer(device, queue, &[0.0; 10]);
    let no_storage = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 64,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    let e = gpu.encode(&mut enc, &no_storage, &good_out, 2).unwrap_err();
    assert!(
        e.to_string().contains("input") && e.to_string().contains("STORAGE"),
        "{e}"
    );
    let e = gpu.encode(&mut enc, &good_in, &good_out, 3).unwrap_err();
    assert!(
        e.to_string().contains("56 bytes") || e.to_string().contains("need 84"),
        "{e}"
    );
    let e = gpu.encode(&mut enc, &good_in, &no_storage, 2).unwrap_err();
    assert!(e.to_string().contains("output"), "{e}");
    gpu.encode(&mut enc, &good_in, &good_out, 0).unwrap();
}

#[test]
fn from_wgpu_runs_on_the_applications_device_and_follows_its_limits() {
    // The application opens its own adapter and device, with downlevel workgroup limits and no
    // subgroup feature.
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let adapter = adapters
        .into_iter()
        .next()
        .expect("an adapter (see tests/common)");
    let mut limits = adapter.limits();
    limits.max_compute_invocations_per_workgroup = 64;
    limits.max_compute_workgroup_size_x = 64;
    limits.max_compute_workgroup_size_y = 64;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .unwrap();
    let app = GpuContext::from_wgpu(&adapter, device, queue).unwrap();
    assert!(
        !app.uses_subgroups(),
        "the device was opened without subgroups"
    );
    assert_eq!(app.limits().max_compute_invocations_per_workgroup, 64);
    let m = odd_model();
    let gpu = GpuMlp::new(&app, &m).unwrap();
    let x = input(17, 7, 4, 2.0);
    let want = wgpu_mlp::cpu::forward_f64(&m, &x).unwrap();
    common::assert_close(
        gpu.forward(&x).unwrap().as_slice(),
        &want,
        1e-5,
        1e-6,
        "from_wgpu",
    );
    // The kernels it picked fit the device (the GEMV kernel needs 256 invocations).
    assert!(
        gpu.linear_kernels(1)
            .iter()
            .all(|k| *k != wgpu_mlp::gpu::LinearKernel::Gemv)
    );
}

/// Runs `gpu.encode` from `a` to `b` (`batch` rows) in a fresh encoder, submits it under an error
/// scope, and returns the first `n` values of `b` and whether wgpu reported an error.
fn encode_and_read(
    ctx: &GpuContext,
    gpu: &GpuMlp,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    batch: usize,
    n: usize,
) -> Vec<f32> {
    let (device, queue) = (ctx.device(), ctx.queue());
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let mut enc = device.create_command_encoder(&Default::default());
    gpu.encode(&mut enc, a, b, batch).unwrap();
    queue.submit([enc.finish()]);
    let error = pollster::block_on(scope.pop());
    assert!(error.is_none(), "b{batch}: {error:?}");
    read_back(device, queue, b, n)
}

/// Encodes that fill the uniform arena (a 1,024-wide layer at batches of ~1,000 needs more
/// blocks than the first arena holds) and that chunk (a 1 MiB binding cap: 224 rows a chunk),
/// into separate buffers and into one buffer for input and output, whether rows grow or shrink:
/// bit for bit what `forward` gives. (The copy bind groups pointed into the arena before a new
/// one was made: a validation error at submit, or zeros; and a chunk's output overwrote the
/// input rows of the chunks after it.)
#[test]
fn encode_over_many_chunks_and_arenas_and_in_place() {
    let capped = gpu_with(&GpuOptions {
        max_storage_binding_size: Some(1 << 20),
        ..Default::default()
    });
    for ctx in [ctx().clone(), capped] {
        let (device, queue) = (ctx.device(), ctx.queue());
        for (widths, batches) in [
            (&[8, 1024, 4][..], &[896, 897, 1000, 2000][..]),
            (&[4, 1024, 8], &[225, 449, 1000]),
        ] {
            let (n_in, n_out) = (widths[0], widths[2]);
            let m = model(widths, &[Activation::Relu, Activation::Identity], 5);
            let gpu = GpuMlp::new(&ctx, &m).unwrap();
            for &batch in batches {
                let x = input(batch, n_in, batch as u64, 2.0);
                let want = bits(gpu.forward(&x).unwrap().as_slice());
                let a = app_buffer(device, queue, x.as_slice());
                let b = app_buffer(device, queue, &vec![f32::NAN; batch * n_out]);
                let got = encode_and_read(&ctx, &gpu, &a, &b, batch, batch * n_out);
                assert_eq!(bits(&got), want, "{widths:?} b{batch}");
                // One buffer for both, as large as the larger of the two.
                let mut both = x.as_slice().to_vec();
                both.resize(batch * n_in.max(n_out), f32::NAN);
                let ab = app_buffer(device, queue, &both);
                let got = encode_and_read(&ctx, &gpu, &ab, &ab, batch, batch * n_out);
                assert_eq!(bits(&got), want, "{widths:?} b{batch} in place");
            }
        }
    }
}

/// A buffer wgpu refuses (a destroyed one) is an error that leaves the application's encoder
/// valid: what it recorded before still runs, and a later encode into it works. A buffer whose
/// size is not a multiple of 4 is taken. (Commands were recorded before the error, so the
/// application's next submit failed.)
#[test]
fn a_failed_encode_leaves_the_encoder_as_it_was() {
    let m = odd_model();
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    let (device, queue) = (ctx().device(), ctx().queue());
    let x = input(2, 7, 9, 1.0);
    let want = bits(gpu.forward(&x).unwrap().as_slice());
    let destroyed = app_buffer(device, queue, x.as_slice());
    destroyed.destroy();
    // 2 rows of 7 f32 are 56 bytes; 58 is not a whole number of words.
    let odd = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("58 bytes"),
        size: 58,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(&odd, 0, bytemuck::cast_slice(x.as_slice()));
    let out = app_buffer(device, queue, &[f32::NAN; 10]);
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let mut enc = device.create_command_encoder(&Default::default());
    let e = gpu.encode(&mut enc, &destroyed, &out, 2).unwrap_err();
    assert!(matches!(e, Error::Gpu(_)), "{e}");
    gpu.encode(&mut enc, &odd, &out, 2).unwrap();
    queue.submit([enc.finish()]);
    let error = pollster::block_on(scope.pop());
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bits(&read_back(device, queue, &out, 10)), want);
}

/// A device made with `wgpu::Limits::downlevel_defaults()` (4 storage buffers per stage; the
/// kernels bind up to 5) is refused by `from_wgpu` with the limit to ask for, instead of a wgpu
/// validation error from the first model that left the context's cached layouts invalid.
#[test]
fn from_wgpu_names_the_limit_a_too_small_device_lacks() {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapter = pollster::block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .next()
        .expect("an adapter (see tests/common)");
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: wgpu::Limits::downlevel_defaults(),
        ..Default::default()
    }))
    .unwrap();
    let Err(e) = GpuContext::from_wgpu(&adapter, device, queue) else {
        panic!("a device with 4 storage buffers per stage was accepted");
    };
    assert!(
        e.to_string()
            .contains("max_storage_buffers_per_shader_stage = 4")
            && e.to_string().contains("at least 5"),
        "{e}"
    );
}
