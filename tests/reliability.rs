//! Reliability (issue 6): bad input everywhere it enters, several threads on one GPU model, a long
//! soak run, timeouts, and device loss. The GPU tests run on whatever adapter `WGPU_BACKEND` /
//! `WGPU_ADAPTER_NAME` select (CI: lavapipe and llvmpipe).
//!
//! Every test takes one process-wide lock, so they run one at a time: the soak test measures the
//! process's memory, and the allocation checks watch every allocation the process makes.
//!
//! Limits at scale are tested in `tests/gpu.rs`, not here:
//! `batch_larger_than_the_storage_binding_is_chunked` (a batch whose activations exceed the largest
//! storage binding runs in chunks and matches the CPU, and a weight matrix over the binding is
//! refused with an `OutOfMemory` error naming the limit) and
//! `batch_larger_than_the_workgroup_grid_is_chunked`.

mod common;

use common::{data, files_in, npy_file, raw_st};

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{assert_close, ctx, forward_with, kernel_runs, model, run_cli};
use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions, KernelMode};
use wgpu_mlp::io::{csv, npy, safetensors as st};
use wgpu_mlp::{Activation, Error, Init, Layer, LayerSpec, Linear, Matrix, Mlp, cpu};

// ---------------------------------------------------------------------------------------------
// Harness: one test at a time, the largest allocation seen, process memory.

/// Records the largest single allocation request, so a test can show that nothing big was
/// allocated.
struct Tracking;

static LARGEST_ALLOC: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Runs `f` and returns its result with the largest allocation (bytes) it made.
fn largest_allocation_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST_ALLOC.store(0, Ordering::SeqCst);
    let out = f();
    (out, LARGEST_ALLOC.load(Ordering::SeqCst))
}

/// One test at a time (see the module docs). A failed test poisons the lock; the rest still run.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Resident set size of this process in bytes (Linux: `VmRSS` in /proc/self/status), or `None`
/// where /proc is not available.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn input(rows: usize, cols: usize, seed: u64) -> Matrix {
    common::input(rows, cols, seed, 1.0)
}

/// The bits of every value (so NaN compares equal to NaN, and -0 differs from 0).
fn bits(m: &Matrix) -> Vec<u32> {
    m.as_slice().iter().map(|v| v.to_bits()).collect()
}

// ---------------------------------------------------------------------------------------------
// Library API: wrong widths, empty batches, NaN and infinity, absurd sizes, invalid init.

#[test]
fn wrong_widths_are_shape_errors_on_cpu_and_gpu() {
    let _serial = serial();
    let m = model(&[5, 4, 3], &[Activation::Relu, Activation::Identity], 1);
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    for cols in [0, 1, 4, 6, 1000] {
        let x = Matrix::new(2, cols, vec![0.5; 2 * cols]).unwrap();
        let errs = [
            cpu::forward(&m, &x).unwrap_err(),
            m.check_input(2, cols).unwrap_err(),
            gpu.forward(&x).unwrap_err(),
            gpu.prepare(&x).unwrap_err(),
        ];
        for err in errs {
            assert!(matches!(err, Error::Shape(_)), "{err}");
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("[2, {cols}]")) && msg.contains("[batch, 5]"),
                "{msg}"
            );
        }
    }
    // A matrix whose data does not match its shape cannot be made.
    assert!(matches!(
        Matrix::new(2, 5, vec![0.0; 9]),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0]]),
        Err(Error::Shape(_))
    ));
    // Layers that do not chain.
    let a = Linear::new(5, 4, vec![0.0; 20], None).unwrap();
    let b = Linear::new(3, 2, vec![0.0; 6], None).unwrap();
    let err = Mlp::from_layers(vec![
        Layer {
            linear: a,
            activation: Activation::Relu,
        },
        Layer {
            linear: b,
            activation: Activation::Identity,
        },
    ])
    .unwrap_err();
    assert!(err.to_string().contains("outputs 4 features"), "{err}");
}

#[test]
fn empty_batch_returns_zero_rows_on_cpu_and_gpu() {
    let _serial = serial();
    let m = model(&[5, 7, 3], &[Activation::Tanh, Activation::Softmax], 2);
    let empty = Matrix::new(0, 5, vec![]).unwrap();
    let y = cpu::forward(&m, &empty).unwrap();
    assert_eq!(y.shape(), [0, 3]);
    assert!(cpu::forward_f64(&m, &empty).unwrap().is_empty());
    for mode in [KernelMode::Fused, KernelMode::Separate] {
        let gpu = common::with_mode(ctx(), &m, mode).unwrap();
        // Before any other call: no workspace is made for an empty batch.
        assert_eq!(gpu.forward(&empty).unwrap().shape(), [0, 3]);
        assert_eq!(gpu.workspace_allocations(), 0);
        // After a real batch, and between real batches.
        let x = input(4, 5, 3);
        let first = gpu.forward(&x).unwrap();
        assert_eq!(gpu.forward(&empty).unwrap().shape(), [0, 3]);
        assert_eq!(gpu.forward(&x).unwrap(), first, "{mode:?}");
        // The wrong width is still refused for an empty batch.
        let bad = Matrix::new(0, 4, vec![]).unwrap();
        assert!(matches!(gpu.forward(&bad), Err(Error::Shape(_))));
        assert!(matches!(cpu::forward(&m, &bad), Err(Error::Shape(_))));
        // `prepare` needs at least one row and says so.
        let err = gpu.prepare(&empty).unwrap_err();
        assert!(err.to_string().contains("got 0"), "{err}");
    }
}

/// One Linear layer `y = x·Wᵀ + b` with W = [[1, 0], [0, 1], [1, 1]] and the given bias.
fn three_outputs(bias: Option<Vec<f32>>, act: Activation) -> Mlp {
    Mlp::from_layers(vec![Layer {
        linear: Linear::new(2, 3, vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], bias).unwrap(),
        activation: act,
    }])
    .unwrap()
}

#[test]
fn nan_and_infinity_propagate_as_in_pytorch() {
    let _serial = serial();
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let x = Matrix::from_rows(&[
        vec![1.0, 2.0],
        vec![nan, 1.0],
        vec![inf, 1.0],
        vec![inf, -inf],
        vec![-inf, 0.5],
    ])
    .unwrap();
    // IEEE arithmetic, as torch.nn.Linear: NaN·0 = NaN (so a NaN anywhere in a row makes the
    // whole output row NaN), ±inf·0 = NaN, inf + (−inf) = NaN.
    let linear: [[f32; 3]; 5] = [
        [1.0, 2.0, 3.0],
        [nan, nan, nan],
        [inf, nan, inf],
        [nan, nan, nan],
        [-inf, nan, -inf],
    ];
    // PyTorch's activations of those: relu(NaN) = NaN, relu(−inf) = 0, sigmoid(inf) = 1,
    // tanh(−inf) = −1; softmax of a row holding NaN or inf is NaN throughout (inf − inf).
    let expected = |act: Activation, row: usize| -> Vec<f32> {
        let mut r = linear[row].to_vec();
        if act.is_row() {
            wgpu_mlp::activation::softmax_row_f32(&mut r);
        } else {
            r.iter_mut().for_each(|v| *v = act.apply_f32(*v));
        }
        r
    };
    for act in [
        Activation::Identity,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
    ] {
        let m = three_outputs(None, act);
        let want: Vec<f64> = (0..5)
            .flat_map(|r| expected(act, r))
            .map(f64::from)
            .collect();
        let y = cpu::forward(&m, &x).unwrap();
        assert_close(y.as_slice(), &want, 1e-6, 1e-6, &format!("cpu {act}"));
        // Every kernel: padding and clamped rows must not turn into NaN or hide one.
        for (mode, kernel) in kernel_runs() {
            let y = forward_with(&m, &x, mode, kernel);
            assert_close(
                y.as_slice(),
                &want,
                1e-6,
                1e-6,
                &format!("gpu {act} {mode:?} {kernel}"),
            );
        }
    }
    // Spot checks of the PyTorch semantics the table encodes.
    let relu = three_outputs(None, Activation::Relu);
    let y = cpu::forward(&relu, &x).unwrap();
    assert!(y.row(1).iter().all(|v| v.is_nan()), "relu(NaN) is NaN");
    assert_eq!(y.row(4)[0], 0.0, "relu(-inf) is 0");

    // Non-finite weights and biases: only the outputs they touch are affected.
    let m = Mlp::from_layers(vec![Layer {
        linear: Linear::new(
            2,
            3,
            vec![nan, 1.0, 1.0, 1.0, inf, 0.0],
            Some(vec![0.0, -inf, 0.5]),
        )
        .unwrap(),
        activation: Activation::Sigmoid,
    }])
    .unwrap();
    let x = Matrix::from_rows(&[vec![1.0, 2.0], vec![0.0, 5.0]]).unwrap();
    // Row 0: [NaN, sigmoid(3 − inf) = 0, sigmoid(inf + 0.5) = 1];
    // row 1: [NaN·0 + 5 = NaN, sigmoid(5 − inf) = 0, sigmoid(inf·0 + 0.5) = NaN].
    let want = [nan, 0.0, 1.0, nan, 0.0, nan].map(f64::from);
    assert_close(
        cpu::forward(&m, &x).unwrap().as_slice(),
        &want,
        0.0,
        0.0,
        "cpu weights",
    );
    for mode in [KernelMode::Fused, KernelMode::Separate] {
        let y = common::with_mode(ctx(), &m, mode)
            .unwrap()
            .forward(&x)
            .unwrap();
        assert_close(
            y.as_slice(),
            &want,
            0.0,
            0.0,
            &format!("gpu weights {mode:?}"),
        );
    }
}

#[test]
fn absurd_sizes_fail_cleanly_without_allocating() {
    let _serial = serial();
    let limit = Mlp::MAX_TENSOR_ELEMENTS;
    assert_eq!(limit, (1 << 31) - 1);
    let cases: Vec<(&str, wgpu_mlp::MlpBuilder)> = vec![
        (
            "Linear(2147483648, 2)",
            Mlp::builder(1 << 31).layer(2, Activation::Relu),
        ),
        (
            "Linear(1, 2147483648)",
            Mlp::builder(1).layer(1 << 31, Activation::Relu),
        ),
        (
            "Linear(65536, 65536)",
            Mlp::builder(1 << 16).layer(1 << 16, Activation::Relu),
        ),
        (
            "overflows usize",
            Mlp::builder(usize::MAX).layer(2, Activation::Relu),
        ),
        // The absurd layer is the last: nothing is allocated for the first ones either.
        (
            "layer 2: Linear(1000, 4294967296)",
            Mlp::builder(8)
                .layer(1000, Activation::Relu)
                .layer(1000, Activation::Relu)
                .layer(1 << 32, Activation::Identity),
        ),
    ];
    for (what, builder) in cases {
        let (result, largest) = largest_allocation_of(|| builder.build());
        let err = result.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{what}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(what) && msg.contains(&limit.to_string()),
            "{what}: {msg}"
        );
        assert!(
            largest < 1 << 20,
            "{what}: an allocation of {largest} bytes was made"
        );
    }
    // One element over the limit is refused (2¹⁵ · 2¹⁶ = 2³¹); ordinary sizes are not affected.
    let err = Mlp::builder(1 << 15)
        .layer(1 << 16, Activation::Relu)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("2147483648 elements"), "{err}");
    let m = Mlp::builder(1)
        .layer(1 << 20, Activation::Relu)
        .build()
        .unwrap();
    assert_eq!(m.param_count(), 2 << 20);

    // Matrices: overflowing shapes are errors, not panics or wrapped lengths.
    for (rows, cols) in [(usize::MAX, 2), (1 << 40, 1 << 40), (1 << 62, 1)] {
        let (r, largest) = largest_allocation_of(|| Matrix::try_zeros(rows, cols));
        let err = r.unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert!(largest < 1 << 20);
        assert!(matches!(
            Matrix::new(rows, cols, vec![]),
            Err(Error::Shape(_))
        ));
    }
    assert_eq!(Matrix::try_zeros(3, 4).unwrap(), Matrix::zeros(3, 4));
    // `Matrix::zeros` panics (documented, like `vec!`) rather than wrapping the length.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let panicked = std::panic::catch_unwind(|| Matrix::zeros(usize::MAX, 2)).is_err();
    std::panic::set_hook(hook);
    assert!(panicked);
    assert!(matches!(
        Linear::new(usize::MAX, 2, vec![], None),
        Err(Error::Shape(_))
    ));
}

#[test]
fn counts_in_messages_are_exact_never_saturated() {
    // (2⁶³ + 1) rows of 3 features in, 2 out: the products overflow u64; the messages give them
    // exactly (27670116110564327427, 18446744073709551618), never 18446744073709551615 (issue
    // 24, item 11).
    let _serial = serial();
    let m = model(&[3, 4, 2], &[Activation::Relu, Activation::Identity], 1);
    let cpu = wgpu_mlp::CpuMlp::new(&m).unwrap();
    let gpu = wgpu_mlp::gpu::GpuMlp::new(common::ctx(), &m).unwrap();
    let batch = (1usize << 63) + 1;
    let saturated = u64::MAX.to_string();
    let mut out = vec![0.0f32; 2];
    let errors = [
        cpu.forward_slice(&[1.0; 3], batch).unwrap_err(),
        gpu.forward_slice(&[1.0; 3], batch).unwrap_err(),
        cpu.forward_into(&[1.0; 3], batch, &mut out).unwrap_err(),
        gpu.forward_into(&[1.0; 3], batch, &mut out).unwrap_err(),
    ];
    for e in errors {
        let msg = e.to_string();
        assert!(
            (msg.contains("27670116110564327427") || msg.contains("18446744073709551618"))
                && !msg.contains(&saturated),
            "{msg}"
        );
    }
    let e = gpu.forward_into(&[1.0; 6], 2, &mut out[..1]).unwrap_err();
    assert!(e.to_string().contains("need 4"), "{e}");
}

#[test]
fn invalid_init_arguments_are_errors_naming_the_layer() {
    let _serial = serial();
    let spec = |init: Init| LayerSpec::new(4, Activation::Relu).weight_init(init);
    let bias = |init: Init| LayerSpec::new(4, Activation::Relu).bias_init(init);
    let cases = [
        (
            spec(Init::Normal {
                mean: 0.0,
                std: -1.0,
            }),
            "std >= 0.0",
        ),
        (spec(Init::Uniform { a: 2.0, b: 1.0 }), "range"),
        (
            spec(Init::Uniform {
                a: f64::NAN,
                b: 1.0,
            }),
            "out of bounds",
        ),
        (spec(Init::Uniform { a: 0.0, b: 1e300 }), "out of bounds"),
        (
            spec(Init::TruncNormal {
                mean: 0.0,
                std: 0.0,
                a: -2.0,
                b: 2.0,
            }),
            "division by zero",
        ),
        (spec(Init::Constant(1e300)), "overflow"),
        (spec(Init::XavierNormal { gain: -1.0 }), "std >= 0.0"),
        (bias(Init::Eye), "2 dimensions"),
        (bias(Init::xavier_uniform()), "fewer than 2 dimensions"),
        (bias(Init::kaiming_normal()), "fewer than 2 dimensions"),
    ];
    for (spec, phrase) in cases {
        let what = format!("{spec:?}");
        let err = Mlp::builder(3)
            .layer(5, Activation::Relu)
            .layer_spec(spec)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{what}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("layer 1") && msg.contains(phrase),
            "{what}: {msg}"
        );
    }
    // Non-finite constants are allowed (as in PyTorch) and give non-finite weights, which the
    // forward pass propagates.
    let m = Mlp::builder(2)
        .layer_spec(LayerSpec::new(2, Activation::Identity).weight_init(Init::Constant(f64::NAN)))
        .build()
        .unwrap();
    let y = cpu::forward(&m, &Matrix::new(1, 2, vec![1.0, 1.0]).unwrap()).unwrap();
    assert!(y.as_slice().iter().all(|v| v.is_nan()));
    assert!(
        !m.diagnostics().is_empty(),
        "constant weights are diagnosed"
    );
}

#[test]
fn commands_refuse_what_does_not_fit_in_memory_before_allocating_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let assert_refused = |o: &Output, what: &str| {
        assert_cli_fails(o, &["needs about", "this process can have"], what);
        common::assert_no_raw_controls(&String::from_utf8_lossy(&o.stderr), what);
    };
    // init: every layer within the per-tensor limit, tens of terabytes in all.
    let layers = vec!["2147483647,1"; 1000].join(",");
    let model = d.join("m.safetensors");
    let o = run_cli(&["init", "--layers", &layers, "--output", &p(&model)]);
    assert_refused(&o, "init");
    // infer: a 12 MB model with a million-wide hidden layer, a 2 MB input of a million rows:
    // terabytes of activations.
    let wide = Mlp::from_layers(vec![
        Layer {
            linear: Linear::new(
                1,
                1_000_000,
                vec![0.5; 1_000_000],
                Some(vec![0.0; 1_000_000]),
            )
            .unwrap(),
            activation: Activation::Relu,
        },
        Layer {
            linear: Linear::new(1_000_000, 1, vec![0.5; 1_000_000], Some(vec![0.0])).unwrap(),
            activation: Activation::Identity,
        },
    ])
    .unwrap();
    let weights = d.join("wide.safetensors");
    st::save_model(&weights, &wide).unwrap();
    let x = d.join("x.csv");
    std::fs::write(&x, "1\n".repeat(1_000_000)).unwrap();
    for device in ["cpu", "auto"] {
        let o = run_cli(&[
            "infer",
            "--weights",
            &p(&weights),
            "--input",
            &p(&x),
            "--output",
            &p(&d.join("y.npy")),
            "--device",
            device,
        ]);
        assert_refused(&o, device);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("1000000 rows") && !err.contains("running on"),
            "{err}"
        );
    }
    // bench: a batch of 10^11 rows.
    let o = run_cli(&["bench", "--workload", "mnist", "--batch", "100000000000"]);
    assert_refused(&o, "bench");
    assert_eq!(files_in(d), ["wide.safetensors", "x.csv"]);
    // Under an address-space limit (`ulimit -v`, 3 GiB) the limit counts, not the machine's
    // free memory: 1.6 GB of weights, held three times while saved, is refused before it is
    // allocated (it used to abort: "memory allocation of 1600080160 bytes failed").
    let mut cmd = common::cli(&["init", "--layers", "20000,20000", "--output", &p(&model)]);
    common::with_limits(&mut cmd, &[(libc::RLIMIT_AS, 3 << 30)], false);
    let o = cmd.output().unwrap();
    assert_refused(&o, "init under ulimit -v");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ulimit -v"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(files_in(d), ["wide.safetensors", "x.csv"]);
    // The formulas, calibrated against peak RSS: `init --layers 4096,4096` (16.8M parameters)
    // peaked at 202 MB for 12·P = 201 MB; `infer --device cpu` of a 4096 → 4096 model on 2,000
    // rows at 231 MB for 67 MB of weights + 33 MB of input + this 197 MB (an upper bound).
    assert_eq!(wgpu_mlp::memory::params(&[4096, 4096]), 4096 * 4097);
    assert_eq!(
        wgpu_mlp::memory::forward_bytes(&[4096, 4096], 4096 * 4097, 2000, false),
        8 * 2000 * 8192 + 8 * 2000 * 4096
    );
    assert_eq!(wgpu_mlp::memory::bytes(3 << 30), "3.0 GiB");
}

// ---------------------------------------------------------------------------------------------
// Files: bad safetensors / .npy / CSV through the library and the CLI.

fn format_msg<T: std::fmt::Debug>(r: wgpu_mlp::Result<T>) -> String {
    match r {
        Err(Error::Format { msg, .. }) => msg,
        other => panic!("expected a Format error, got {other:?}"),
    }
}

#[test]
fn duplicate_safetensors_keys_are_refused() {
    let _serial = serial();
    // serde_json (inside the safetensors crate) keeps the last of two equal keys; the second
    // entry here would silently replace the first.
    let w = r#""dtype":"F32","shape":[2,2],"data_offsets":[0,16]"#;
    let h = format!(r#"{{"0.weight":{{{w}}},"0.weight":{{{w}}}}}"#);
    assert!(
        safetensors::SafeTensors::deserialize(&raw_st(&h, &[0; 16])).is_ok(),
        "the safetensors crate accepts duplicate keys; if it stops, this check can go"
    );
    let msg = format_msg(st::layers_from_bytes(&raw_st(&h, &[0; 16]), "mem", None));
    assert!(msg.contains("'0.weight' twice"), "{msg}");
    // The same key spelled with an escape is the same key.
    let h = format!(r#"{{"0.weight":{{{w}}},"0.w\u0065ight":{{{w}}}}}"#);
    let msg = format_msg(st::layers_from_bytes(&raw_st(&h, &[0; 16]), "mem", None));
    assert!(msg.contains("'0.weight' twice"), "{msg}");
    // Repeated metadata entries too.
    let h = format!(r#"{{"__metadata__":{{"format":"pt","format":"np"}},"0.weight":{{{w}}}}}"#);
    let msg = format_msg(st::layers_from_bytes(&raw_st(&h, &[0; 16]), "mem", None));
    assert!(msg.contains("'format' inside '__metadata__'"), "{msg}");
    // Distinct keys are fine, escaped or not.
    let h = format!(r#"{{"__metadata__":{{"a\"b":"x"}},"0.w\u0065ight":{{{w}}}}}"#);
    assert_eq!(
        st::layers_from_bytes(&raw_st(&h, &[0; 16]), "mem", None)
            .unwrap()
            .len(),
        1
    );
    // .npy headers (a Python dict) were already strict.
    let h = "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    let msg = format_msg(npy::from_bytes(&npy_file(1, h, &[0; 4]), "mem"));
    assert!(msg.contains("duplicate key 'descr'"), "{msg}");
}

/// Bad weight files: (file name, bytes, phrase the error must contain).
fn bad_weight_files() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = std::fs::read(data("seed_example.safetensors")).unwrap();
    let mut lying_len = good.clone();
    lying_len[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let w = r#""dtype":"F32","shape":[2,2],"data_offsets":[0,16]"#;
    let mut non_utf8 = raw_st(
        r#"{"0.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}"#,
        &[0; 4],
    );
    non_utf8[12] = 0xff;
    vec![
        (
            "truncated.safetensors",
            good[..good.len() - 5].to_vec(),
            "data_offsets",
        ),
        ("lying_len.safetensors", lying_len, "past the end"),
        (
            "offsets.safetensors",
            raw_st(
                r#"{"0.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,1600]}}"#,
                &[0; 16],
            ),
            "data_offsets",
        ),
        (
            "overflow.safetensors",
            raw_st(
                r#"{"0.weight":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#,
                &[0; 16],
            ),
            "overflow",
        ),
        (
            "int.safetensors",
            raw_st(
                r#"{"0.weight":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}"#,
                &[0; 16],
            ),
            "dtype I32",
        ),
        (
            "dup.safetensors",
            raw_st(
                &format!(r#"{{"0.weight":{{{w}}},"0.weight":{{{w}}}}}"#),
                &[0; 16],
            ),
            "twice",
        ),
        ("non_utf8.safetensors", non_utf8, "UTF-8"),
        ("empty.safetensors", vec![], "too short"),
        // Two entries under one name, with different offsets: the duplicate is the problem.
        (
            "dup_offsets.safetensors",
            raw_st(
                &format!(
                    r#"{{"0.weight":{{{w}}},"0.weight":{{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}}}}"#
                ),
                &[0; 32],
            ),
            "'0.weight' twice",
        ),
        // What torch.save writes: a zip archive, or (before PyTorch 1.6) a bare pickle.
        (
            "model.pth",
            torch_zip(),
            "not a readable zip archive (torch.save's format)",
        ),
        (
            "legacy.pt",
            torch_pickle(),
            "legacy (pre-1.6, non-zip) torch.save format",
        ),
    ]
}

/// The start of a zip archive as `torch.save` writes one (`archive/data.pkl` first).
fn torch_zip() -> Vec<u8> {
    let mut b = b"PK\x03\x04\x00\x00\x08\x08\x00\x00\x00\x00\x00\x00".to_vec();
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(b"archive/data.pklFB\x0c\x00ZZZZZZZZZZZZ\x80\x02}q\x00");
    b
}

/// A legacy `torch.save` pickle (protocol 2): the magic number comes first.
fn torch_pickle() -> Vec<u8> {
    let mut b = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.".to_vec();
    b.extend_from_slice(&[0; 64]);
    b
}

#[test]
fn damaged_and_legacy_pytorch_checkpoints_are_named_and_safetensors_that_look_alike_load() {
    let _serial = serial();
    // torch.save files are read (tests/pth.rs); a damaged archive and the legacy format are named.
    let msg = format_msg(st::layers_from_bytes(&torch_zip(), "m.pth", None));
    assert!(msg.contains("zip archive"), "{msg}");
    let msg = format_msg(st::layers_from_bytes(&torch_pickle(), "m.pth", None));
    assert!(
        msg.contains("legacy") && msg.contains("torch.save(torch.load("),
        "{msg}"
    );
    // A real safetensors file whose header is 640 bytes long starts with 80 02, like a pickle:
    // it loads.
    let model = model(&[2, 1], &[Activation::Identity], 0);
    let good = st::model_to_bytes(&model).unwrap();
    let hlen = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut header = String::from_utf8(good[8..8 + hlen].to_vec()).unwrap();
    header.push_str(&" ".repeat(640 - hlen));
    let padded = raw_st(&header, &good[8 + hlen..]);
    assert_eq!(padded[..2], [0x80, 0x02]);
    let layers = st::layers_from_bytes(&padded, "padded", None).unwrap();
    assert_eq!(layers[0].weight(), model.linears().next().unwrap().weight());
}

/// Bad inputs for seed_example (3 features): (file name, bytes, phrase).
fn bad_input_files() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = std::fs::read(data("seed_example.x.npy")).unwrap();
    let h = |descr: &str, shape: &str| {
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
    };
    let mut lying_hlen = good.clone();
    lying_hlen[8..10].copy_from_slice(&60000u16.to_le_bytes());
    let mut non_utf8 = npy_file(1, &h("<f4", "(1, 3)"), &[0; 12]);
    non_utf8[15] = 0xfe;
    vec![
        (
            "truncated.npy",
            good[..good.len() - 3].to_vec(),
            "truncated",
        ),
        ("lying_hlen.npy", lying_hlen, "past the end"),
        (
            "lying_shape.npy",
            npy_file(1, &h("<f4", "(4, 3)"), &[0; 12]),
            "truncated",
        ),
        (
            "overflow.npy",
            npy_file(1, &h("<f4", "(4294967296, 4294967296)"), &[0; 12]),
            "overflows",
        ),
        // Integer arrays convert to f32 now (issue 23); a complex dtype is still refused.
        (
            "complex.npy",
            npy_file(1, &h("<c8", "(1, 3)"), &[0; 24]),
            "dtype '<c8'",
        ),
        (
            "dup.npy",
            npy_file(
                1,
                "{'descr': '<f4', 'shape': (1, 3), 'shape': (1, 3), 'fortran_order': False}",
                &[0; 12],
            ),
            "duplicate key 'shape'",
        ),
        ("non_utf8.npy", non_utf8, "UTF-8"),
        (
            "non_utf8.csv",
            b"1,2,3\n4,\xff5,6\n".to_vec(),
            "line 2: not valid UTF-8",
        ),
        (
            "ragged.csv",
            b"1,2,3\n4,5\n".to_vec(),
            "line 2 has 2 values",
        ),
        (
            "text.csv",
            b"1,2,3\n4,five,6\n".to_vec(),
            "'five' is not a number",
        ),
    ]
}

/// Asserts a clean CLI failure: status 1, an `error: ` line (notes may come first), every one of
/// `phrases`, no panic.
fn assert_cli_fails(o: &Output, phrases: &[&str], what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{what}: {err}");
    assert!(
        err.lines().any(|l| l.starts_with("error: ")),
        "{what}: {err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
    for p in phrases {
        assert!(err.contains(p), "{what}: expected '{p}' in: {err}");
    }
}

#[test]
fn bad_files_fail_with_a_named_problem_in_library_and_cli() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good_weights = data("seed_example.safetensors");
    let good_x = data("seed_example.x.npy");
    // An output file from an earlier run: a failed run must leave it as it was.
    let out = d.join("y.npy");
    std::fs::write(&out, b"earlier output").unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_string();

    let mut expected_files = vec!["y.npy".to_string()];
    for (name, bytes, phrase) in bad_weight_files() {
        let msg = format_msg(st::layers_from_bytes(&bytes, name, None));
        assert!(msg.contains(phrase), "{name}: {msg}");
        let path = d.join(name);
        std::fs::write(&path, &bytes).unwrap();
        expected_files.push(name.to_string());
        let o = run_cli(&[
            "infer",
            "--weights",
            &p(&path),
            "--act",
            "sigmoid,identity",
            "--input",
            &p(&good_x),
            "--output",
            &p(&out),
            "--device",
            "cpu",
        ]);
        assert_cli_fails(&o, &[name, phrase], name);
    }
    for (name, bytes, phrase) in bad_input_files() {
        let r = if name.ends_with(".csv") {
            csv::from_bytes(&bytes, name)
        } else {
            npy::from_bytes(&bytes, name)
        };
        let msg = format_msg(r);
        assert!(msg.contains(phrase), "{name}: {msg}");
        let path = d.join(name);
        std::fs::write(&path, &bytes).unwrap();
        expected_files.push(name.to_string());
        for device in ["cpu", "gpu"] {
            let o = run_cli(&[
                "infer",
                "--weights",
                &p(&good_weights),
                "--act",
                "sigmoid,identity",
                "--input",
                &p(&path),
                "--output",
                &p(&out),
                "--device",
                device,
            ]);
            assert_cli_fails(&o, &[name, phrase], name);
        }
    }
    // The earlier output is untouched and no temporary file is left behind.
    assert_eq!(std::fs::read(&out).unwrap(), b"earlier output");
    expected_files.sort();
    assert_eq!(files_in(d), expected_files);

    // `init` with an absurd width: refused at once, nothing written.
    let model = d.join("m.safetensors");
    for layers in ["1,2147483648", "2147483648,2", "4,65536,65536"] {
        let o = run_cli(&["init", "--layers", layers, "--output", &p(&model)]);
        assert_cli_fails(&o, &["too large", "2147483647"], layers);
        assert!(!model.exists(), "{layers}");
    }
}

#[test]
fn cli_runs_non_finite_inputs_without_failing() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.csv");
    std::fs::write(&x, "nan,0,1\ninf,-inf,0\n0.5,0.25,-1\n").unwrap();
    let weights = data("seed_example.safetensors");
    for device in ["cpu", "gpu"] {
        let out = dir.path().join(format!("y_{device}.csv"));
        let o = run_cli(&[
            "infer",
            "--weights",
            weights.to_str().unwrap(),
            "--act",
            "sigmoid,identity",
            "--input",
            x.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--device",
            device,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let y = csv::read(&out).unwrap();
        assert!(
            y.row(0).iter().all(|v| v.is_nan()),
            "{device}: {:?}",
            y.row(0)
        );
        assert!(y.row(2).iter().all(|v| v.is_finite()), "{device}");
    }
}

/// An `infer` run that writes a large CSV output (5,000 × 1,000 values, about 50 MB) in `d`, over
/// an earlier `y.csv`: long enough to be stopped while the temporary file is being written.
/// `max_file` limits the size of files it may write (`ulimit -f`).
fn spawn_big_csv_write(d: &Path, max_file: Option<u64>) -> std::process::Child {
    let weights = d.join("wide.safetensors");
    if !weights.exists() {
        st::save_model(&weights, &model(&[1, 1000], &[Activation::Identity], 0)).unwrap();
        std::fs::write(d.join("x.csv"), "0.5\n".repeat(5000)).unwrap();
    }
    std::fs::write(d.join("y.csv"), "earlier output").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"));
    cmd.args([
        "infer",
        "--weights",
        "wide.safetensors",
        "--input",
        "x.csv",
        "--output",
        "y.csv",
        "--device",
        "cpu",
    ])
    .current_dir(d)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    // SIGQUIT dumps core by default: no core file in the folder, please.
    let mut limits = vec![(libc::RLIMIT_CORE, 0)];
    limits.extend(max_file.map(|max| (libc::RLIMIT_FSIZE, max)));
    common::with_limits(&mut cmd, &limits, false);
    cmd.spawn().unwrap()
}

/// Waits until `child` is writing its temporary output (a `.y.csv.tmp-*` file with data in it),
/// then sends it `signal`; returns the temporary file's name.
fn signal_while_writing(child: &std::process::Child, d: &Path, signal: i32) -> String {
    loop {
        let writing = std::fs::read_dir(d).unwrap().flatten().find(|e| {
            e.file_name().to_string_lossy().starts_with(".y.csv.tmp-")
                && e.metadata().is_ok_and(|m| m.len() > 0)
        });
        if let Some(e) = writing {
            // SAFETY: kill(2) on the child's pid.
            assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
            return e.file_name().to_string_lossy().into_owned();
        }
        assert!(
            std::fs::read_to_string(d.join("y.csv")).unwrap() == "earlier output",
            "the run finished before it could be stopped; make the output larger"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_run_stopped_by_a_signal_leaves_no_temporary_file() {
    use std::os::unix::process::ExitStatusExt;
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for signal in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGALRM,
        libc::SIGPROF,
        libc::SIGRTMIN() + 3,
        // Faults (their handler waits for the clean-up instead of returning): SIGABRT is what a
        // refused allocation raises.
        libc::SIGABRT,
        libc::SIGSYS,
    ] {
        let child = spawn_big_csv_write(d, None);
        signal_while_writing(&child, d, signal);
        let (o, killed) = common::wait_or_kill(child, 120);
        assert!(!killed, "signal {signal}: the process did not end");
        // It ends as the signal says (a shell reports 128 + the signal number).
        assert_eq!(o.status.signal(), Some(signal), "{:?}", o.status);
        assert_eq!(
            files_in(d),
            ["wide.safetensors", "x.csv", "y.csv"],
            "signal {signal}"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("y.csv")).unwrap(),
            "earlier output"
        );
    }
    // A file-size limit (`ulimit -f`, here 1 MiB) stops the write with SIGXFSZ: the same.
    let child = spawn_big_csv_write(d, Some(1 << 20));
    let (o, killed) = common::wait_or_kill(child, 120);
    assert!(!killed);
    assert_eq!(o.status.signal(), Some(libc::SIGXFSZ), "{:?}", o.status);
    assert_eq!(files_in(d), ["wide.safetensors", "x.csv", "y.csv"]);
    assert_eq!(
        std::fs::read_to_string(d.join("y.csv")).unwrap(),
        "earlier output"
    );
    // SIGKILL cannot be caught: the temporary file stays, named after the output and the process
    // id (as docs/GUARANTEES.md says), and the earlier output is still intact.
    let child = spawn_big_csv_write(d, None);
    let pid = child.id();
    let temp = signal_while_writing(&child, d, libc::SIGKILL);
    let (o, _) = common::wait_or_kill(child, 120);
    assert_eq!(o.status.signal(), Some(libc::SIGKILL));
    assert!(temp.starts_with(&format!(".y.csv.tmp-{pid}-")), "{temp}");
    assert_eq!(
        files_in(d),
        [temp.as_str(), "wide.safetensors", "x.csv", "y.csv"]
    );
    assert_eq!(
        std::fs::read_to_string(d.join("y.csv")).unwrap(),
        "earlier output"
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrency: one model, several threads.

/// The model and inputs of the concurrency tests, with each input's single-threaded output.
struct Workload {
    model: Mlp,
    inputs: Vec<Matrix>,
}

fn workload() -> Workload {
    let model = model(
        &[24, 64, 48, 10],
        &[Activation::Relu, Activation::Tanh, Activation::Softmax],
        11,
    );
    let inputs = [1, 2, 3, 7, 16, 31, 33, 64, 100, 129, 0, 5]
        .iter()
        .enumerate()
        .map(|(i, &rows)| input(rows, 24, 500 + i as u64))
        .collect();
    Workload { model, inputs }
}

#[test]
fn four_threads_on_one_model_get_exactly_their_single_threaded_results() {
    let _serial = serial();
    const THREADS: usize = 4;
    const CALLS: usize = 250;
    let w = workload();
    let gpu = GpuMlp::new(ctx(), &w.model).unwrap();
    // Alone, one call at a time; and checked against the CPU reference.
    let alone: Vec<Vec<u32>> = w
        .inputs
        .iter()
        .map(|x| {
            let y = gpu.forward(x).unwrap();
            let expected = cpu::forward_f64(&w.model, x).unwrap();
            assert_close(y.as_slice(), &expected, 1e-4, 1e-4, "single-threaded");
            bits(&y)
        })
        .collect();
    let start = Instant::now();
    let mismatches = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (gpu, w, alone, mismatches) = (&gpu, &w, &alone, &mismatches);
            s.spawn(move || {
                let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                for call in 0..CALLS {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let i = (state % w.inputs.len() as u64) as usize;
                    let y = gpu
                        .forward(&w.inputs[i])
                        .unwrap_or_else(|e| panic!("thread {t}, call {call}, input {i}: {e}"));
                    if bits(&y) != alone[i] {
                        mismatches.fetch_add(1, Ordering::Relaxed);
                        eprintln!("thread {t}, call {call}: input {i} differs from alone");
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    println!(
        "{THREADS} threads × {CALLS} calls on one model: {} calls in {elapsed:.2?} ({:.0} calls/s) on {} ({})",
        THREADS * CALLS,
        (THREADS * CALLS) as f64 / elapsed.as_secs_f64(),
        ctx().adapter().name,
        ctx().adapter().backend
    );
    assert_eq!(mismatches.load(Ordering::Relaxed), 0);
}

#[test]
fn threads_with_their_own_models_on_one_context() {
    let _serial = serial();
    // Four models share the device and queue; their submits interleave freely.
    let w = workload();
    let models: Vec<GpuMlp> = (0..4)
        .map(|_| GpuMlp::new(ctx(), &w.model).unwrap())
        .collect();
    let alone: Vec<Vec<u32>> = w
        .inputs
        .iter()
        .map(|x| bits(&models[0].forward(x).unwrap()))
        .collect();
    std::thread::scope(|s| {
        for (t, gpu) in models.iter().enumerate() {
            let (w, alone) = (&w, &alone);
            s.spawn(move || {
                for call in 0..100 {
                    let i = (call * 7 + t * 3) % w.inputs.len();
                    let y = gpu.forward(&w.inputs[i]).unwrap();
                    assert_eq!(bits(&y), alone[i], "model {t}, call {call}, input {i}");
                }
            });
        }
    });
}

/// Issue 24: several threads on one context while one of them holds the device for a long time.
/// wgpu's GL backend guards its GL context with a lock that panics after 6 s ("Could not lock
/// adapter context. This is most-likely a deadlock."); llvmpipe runs a dispatch inside the call
/// that submits it, and compiles a large shader inside pipeline creation, so a long forward pass
/// or a slow compile on one thread made every other thread's device call (creating a pipeline,
/// dropping a buffer, polling) panic: 2 CI runs in 3 on a slower machine. Here one thread runs
/// forward passes that each hold the device for several seconds on llvmpipe, while three others
/// keep compiling models of their own (distinct epilogues: distinct shaders), running and
/// dropping them, each result checked against the CPU reference. With the crate's device lock
/// they take turns; without it the first wait past 6 s panicked. On other backends it checks
/// that concurrent use stays correct.
#[test]
fn threads_wait_for_a_long_device_call_instead_of_panicking() {
    let _serial = serial();
    let ctx = ctx();
    let gl = ctx.adapter().backend == "Gl";
    // One forward pass of this model on 12,288 rows is ~140 GFLOP in one submit: about 7 s on
    // llvmpipe on two idle cores (20 GFLOP/s), past the 6 s after which wgpu's GL lock panics.
    let big = model(
        &[1024, 2048, 2048, 16],
        &[Activation::Relu, Activation::Relu, Activation::Identity],
        3,
    );
    let rows = if gl { 12_288 } else { 512 };
    let x = common::input(rows, 1024, 9, 1.0);
    let gpu = GpuMlp::new(ctx, &big).unwrap();
    let acts = [
        Activation::Mish,
        Activation::Gelu,
        Activation::Selu,
        Activation::Softplus {
            beta: 1.0,
            threshold: 20.0,
        },
        Activation::Elu(1.0),
        Activation::Silu,
        Activation::Hardswish,
        Activation::Tanh,
        Activation::Sigmoid,
    ];
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let long = s.spawn(|| {
            let t = Instant::now();
            let y = gpu.forward(&x).unwrap();
            assert!(y.as_slice().iter().all(|v| v.is_finite()));
            done.store(true, Ordering::SeqCst);
            t.elapsed()
        });
        let mut workers = Vec::new();
        for t in 0..3usize {
            let (done, acts) = (&done, &acts);
            workers.push(s.spawn(move || {
                let mut built = 0;
                let mut i = t;
                while !done.load(Ordering::SeqCst) || built < 2 {
                    // A chain of activations long enough to make a large shader, a new one per
                    // model: the pipeline cache cannot serve it.
                    let chain: Vec<Activation> = (0..12)
                        .map(|k| acts[(i + k * (t + 1)) % acts.len()])
                        .collect();
                    let mut modules = vec![wgpu_mlp::Module::Linear(
                        Linear::new(5, 7, common::random_vec(35, i as u64, -1.0, 1.0), None)
                            .unwrap(),
                    )];
                    modules.extend(chain.iter().map(|a| wgpu_mlp::Module::Activation(*a)));
                    let m = Mlp::new(modules).unwrap();
                    let small = common::input(3, 5, i as u64, 2.0);
                    let y = GpuMlp::new(ctx, &m)
                        .and_then(|g| g.forward(&small))
                        .unwrap_or_else(|e| panic!("worker {t}, model {built}: {e}"));
                    let expected = cpu::forward_f64(&m, &small).unwrap();
                    assert_close(y.as_slice(), &expected, 1e-4, 1e-5, "worker model");
                    built += 1;
                    i += 3;
                }
                built
            }));
        }
        let longest = long.join().expect("the long thread");
        let built: Vec<usize> = workers
            .into_iter()
            .map(|w| w.join().expect("a worker"))
            .collect();
        println!(
            "the long forward pass took {longest:.2?} on {} ({}); models built meanwhile: {built:?}",
            ctx.adapter().name,
            ctx.adapter().backend
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Soak: 10,000 passes, flat buffers and memory.

/// RSS growth allowed between pass 1,000 and pass 10,000.
const RSS_GROWTH_BOUND: u64 = 32 << 20;

#[test]
fn soak_ten_thousand_passes_keep_buffers_and_memory_flat() {
    let _serial = serial();
    const PASSES: usize = 10_000;
    const BATCHES: [usize; 8] = [256, 1, 17, 64, 3, 128, 100, 33];
    let m = model(&[32, 64, 16], &[Activation::Relu, Activation::Softmax], 21);
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    let inputs: Vec<Matrix> = BATCHES
        .iter()
        .enumerate()
        .map(|(i, &rows)| input(rows, 32, 900 + i as u64))
        .collect();
    // Warm-up: the largest batch first, so the workspace is built once.
    let expected: Vec<Vec<u32>> = inputs
        .iter()
        .map(|x| bits(&gpu.forward(x).unwrap()))
        .collect();
    let warm = gpu.workspace_allocations();
    assert!(warm > 0);
    let start = Instant::now();
    let mut rss_at_1000 = None;
    for pass in 1..=PASSES {
        let i = pass % inputs.len();
        let y = gpu.forward(&inputs[i]).unwrap();
        if pass % 97 == 0 {
            assert_eq!(bits(&y), expected[i], "pass {pass}");
        }
        if pass == 1000 {
            rss_at_1000 = rss_bytes();
        }
    }
    let elapsed = start.elapsed();
    let rss_end = rss_bytes();
    assert_eq!(
        gpu.workspace_allocations(),
        warm,
        "device buffers were allocated after warm-up"
    );
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    match (rss_at_1000, rss_end) {
        (Some(a), Some(b)) => {
            let growth = b.saturating_sub(a);
            println!(
                "soak: {PASSES} passes in {elapsed:.2?} ({:.0} passes/s) on {} ({}); workspace \
                 buffers {warm} throughout; RSS {:.1} MiB at pass 1,000, {:.1} MiB at pass \
                 {PASSES} (growth {:.2} MiB, bound {:.0} MiB)",
                PASSES as f64 / elapsed.as_secs_f64(),
                ctx().adapter().name,
                ctx().adapter().backend,
                mib(a),
                mib(b),
                mib(growth),
                mib(RSS_GROWTH_BOUND)
            );
            assert!(
                growth < RSS_GROWTH_BOUND,
                "RSS grew by {:.1} MiB between pass 1,000 and {PASSES}",
                mib(growth)
            );
        }
        _ => println!("soak: no /proc/self/status here; RSS not measured"),
    }
}

// ---------------------------------------------------------------------------------------------
// Timeouts and device loss.

#[test]
fn a_wait_longer_than_the_timeout_is_an_error_not_a_hang() {
    let _serial = serial();
    // Work that takes far longer than the timeout: ~1 GFLOP of matmuls against 1 µs.
    let impatient = GpuContext::new(&GpuOptions {
        timeout: Duration::from_micros(1),
        ..GpuOptions::default()
    })
    .unwrap();
    let m = model(
        &[512, 512, 512],
        &[Activation::Relu, Activation::Identity],
        4,
    );
    let x = input(1024, 512, 5);
    let gpu = GpuMlp::new(&impatient, &m).unwrap();
    let start = Instant::now();
    let result = gpu.forward(&x);
    let elapsed = start.elapsed();
    let adapter = impatient.adapter();
    match result {
        Err(Error::Timeout(t)) => {
            assert_eq!(t, Duration::from_micros(1));
            println!(
                "timeout: a forward pass against a 1 µs timeout failed with Timeout after \
                 {elapsed:.2?} on {} ({})",
                adapter.name, adapter.backend
            );
        }
        // wgpu's GL backend runs the commands inside `queue.submit`, and llvmpipe executes them
        // there: by the time we wait, nothing is left to wait for, so no wait can time out.
        Ok(y) if adapter.backend == "Gl" => {
            assert_eq!(y.shape(), [1024, 512]);
            println!(
                "timeout: on {} (Gl) the work completes inside submit ({elapsed:.2?}); no wait \
                 is left to time out",
                adapter.name
            );
        }
        Ok(_) => panic!("a 1 µs timeout did not fire on {adapter:?}"),
        Err(e) => panic!("expected a Timeout, got {e}"),
    }
    assert!(elapsed < Duration::from_secs(30));
    // A model on the same device with a patient context works, and so does this one, rebuilt.
    let patient = GpuMlp::new(ctx(), &m).unwrap();
    let want = patient.forward(&x).unwrap();
    assert_close(
        want.as_slice(),
        &cpu::forward_f64(&m, &x).unwrap(),
        1e-4,
        1e-4,
        "after a timeout",
    );
}

#[test]
fn device_loss_is_an_error_and_a_new_device_works() {
    let _serial = serial();
    let m = model(&[6, 8, 3], &[Activation::Tanh, Activation::Softmax], 8);
    let x = input(5, 6, 9);
    let lost = GpuContext::new(&GpuOptions::default()).unwrap();
    let gpu = GpuMlp::new(&lost, &m).unwrap();
    let before = gpu.forward(&x).unwrap();
    lost.simulate_device_loss();
    // Every later call fails with an error (none panics or hangs).
    let mut errors = Vec::new();
    for _ in 0..3 {
        errors.push(gpu.forward(&x).unwrap_err());
    }
    errors.push(GpuMlp::new(&lost, &m).unwrap_err());
    errors.push(common::with_mode(&lost, &m, KernelMode::Separate).unwrap_err());
    // The resident-timing calls too (prepare gave a validation error, found by a red team).
    errors.push(gpu.prepare(&x).unwrap_err());
    errors.push(gpu.run_prepared().unwrap_err());
    errors.push(gpu.read_prepared().unwrap_err());
    errors.push(pollster::block_on(gpu.forward_async(&x)).unwrap_err());
    println!("after device loss: {errors:?}");
    assert!(
        errors.iter().all(|e| matches!(e, Error::DeviceLost(_))),
        "{errors:?}"
    );
    // Other contexts on the same adapter are not affected.
    let y = GpuMlp::new(ctx(), &m).unwrap().forward(&x).unwrap();
    assert_eq!(bits(&y), bits(&before));
    // A new context and model carry on, with the same results.
    let fresh = GpuContext::new(&GpuOptions::default()).unwrap();
    let again = GpuMlp::new(&fresh, &m).unwrap();
    assert_eq!(bits(&again.forward(&x).unwrap()), bits(&before));
}
