//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod cli_args;
pub mod train;

use std::process::{Command, Output};
use std::sync::OnceLock;

use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuMlpOptions, GpuOptions, KernelMode, LinearKernel};
use wgpu_mlp::{Activation, Matrix, Mlp};

/// The GPU context for tests. There is no silent skip: with no adapter the test fails and says how
/// to install one. `WGPU_BACKEND` (vulkan, gl) and `WGPU_ADAPTER_NAME` choose the adapter.
pub fn gpu() -> GpuContext {
    gpu_with(&GpuOptions::default())
}

/// [`gpu`] with the given options.
pub fn gpu_with(options: &GpuOptions) -> GpuContext {
    match GpuContext::new(options) {
        Ok(ctx) => ctx,
        Err(e) => panic!(
            "GPU tests need an adapter and none was usable: {e}\n\
             On Debian/Ubuntu: apt-get install -y mesa-vulkan-drivers libvulkan1 (lavapipe), \
             then run with WGPU_BACKEND=vulkan; Mesa's llvmpipe (WGPU_BACKEND=gl) needs libegl-mesa0."
        ),
    }
}

/// Every Linear kernel fused, then the separate kernels (with the default choice): the runs a test
/// makes when padding, clamped rows or the epilogue could differ between kernels.
pub fn kernel_runs() -> impl Iterator<Item = (KernelMode, LinearKernel)> + Clone {
    LinearKernel::ALL
        .map(|k| (KernelMode::Fused, k))
        .into_iter()
        .chain([(KernelMode::Separate, LinearKernel::Auto)])
}

/// `m` on `ctx` with the given kernel mode (and the default kernels otherwise).
pub fn with_mode(ctx: &GpuContext, m: &Mlp, mode: KernelMode) -> wgpu_mlp::Result<GpuMlp> {
    let options = GpuMlpOptions {
        mode,
        ..Default::default()
    };
    GpuMlp::with_options(ctx, m, options)
}

/// `m`'s forward pass on `x` on the test context, with the given kernels.
pub fn forward_with(m: &Mlp, x: &Matrix, mode: KernelMode, kernel: LinearKernel) -> Matrix {
    let options = GpuMlpOptions {
        mode,
        kernel,
        ..Default::default()
    };
    GpuMlp::with_options(ctx(), m, options)
        .unwrap()
        .forward(x)
        .unwrap()
}

/// Asserts `actual` (f32, from the GPU) matches `expected` (the f64 reference) element by element:
/// |a − e| ≤ atol + rtol·|e|. NaN only matches an expected NaN; infinities must match exactly.
pub fn assert_close(actual: &[f32], expected: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length differs");
    let mut worst = (0usize, 0.0f64);
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let a = f64::from(a);
        if e.is_nan() {
            assert!(a.is_nan(), "{what}[{i}]: expected NaN, got {a}");
            continue;
        }
        assert!(!a.is_nan(), "{what}[{i}]: got NaN, expected {e}");
        if e.is_infinite() {
            assert_eq!(a, e, "{what}[{i}]: expected {e}, got {a}");
            continue;
        }
        let err = (a - e).abs();
        let tol = atol + rtol * e.abs();
        assert!(
            err <= tol,
            "{what}[{i}]: got {a}, expected {e} (error {err:e} > tolerance {tol:e})"
        );
        if err / tol > worst.1 {
            worst = (i, err / tol);
        }
    }
}

/// Deterministic pseudo-random f32 values in [lo, hi) (SplitMix64), so failures reproduce.
pub fn random_vec(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 40) as f32 / (1u64 << 24) as f32;
            lo + (hi - lo) * u
        })
        .collect()
}

/// One context per test binary, shared by its tests (device creation and kernel compilation are
/// slow on software adapters).
pub fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(gpu)
}

/// A second shared context on the same adapter with subgroup operations turned off, so the
/// kernels written for devices without them run on any adapter.
pub fn ctx_without_subgroups() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| {
        gpu_with(&GpuOptions {
            subgroups: false,
            ..Default::default()
        })
    })
}

/// A model with PyTorch's default init: `sizes` input first, one activation per layer.
pub fn model(sizes: &[usize], acts: &[Activation], seed: u64) -> Mlp {
    let mut b = Mlp::builder(sizes[0]).seed(seed);
    for (w, a) in sizes[1..].iter().zip(acts) {
        b = b.layer(*w, *a);
    }
    b.build().unwrap()
}

/// A `[rows, cols]` input of values uniform in [-scale, scale).
pub fn input(rows: usize, cols: usize, seed: u64, scale: f32) -> Matrix {
    Matrix::new(rows, cols, random_vec(rows * cols, seed, -scale, scale)).unwrap()
}

/// A `.npy` file from its parts: magic, version, header length (u16 for v1, u32 after), header
/// text, data. Tests use it to build valid and deliberately broken files.
pub fn npy_file(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A file of `tests/data`.
pub fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A path as the `&str` an argument list wants (test paths are UTF-8).
pub fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("a UTF-8 test path")
}

/// A safetensors file from its parts: the header length, the header text, the data. Tests use it
/// to build valid and deliberately broken files.
pub fn raw_st(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A command's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a clean failure: exit status 1, an `error: ` line on stderr (notes may come first), no
/// panic or backtrace; returns stderr.
pub fn assert_fails(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.lines().any(|l| l.starts_with("error: ")),
        "stderr: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "stderr: {err}"
    );
    err
}

/// Asserts success.
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "status {:?}, stderr: {}",
        o.status,
        stderr(o)
    );
}

/// Runs the `wgpu-mlp` binary with `args` and returns its output (status, stdout, stderr).
pub fn run_cli(args: &[&str]) -> Output {
    cli(args).output().expect("run wgpu-mlp")
}

/// [`run_cli`] with every backend visible, whatever `WGPU_BACKEND` the tests run under: for
/// tests of adapter choice.
pub fn run_cli_all_backends(args: &[&str]) -> Output {
    cli(args)
        .env_remove("WGPU_BACKEND")
        .output()
        .expect("run wgpu-mlp")
}

/// The `wgpu-mlp` command with `args`, to be run with other streams or environment.
pub fn cli(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"));
    c.args(args).env("RUST_BACKTRACE", "1");
    c
}

/// A resource limit (`ulimit`) for [`with_limits`].
pub type Limit = (libc::__rlimit_resource_t, u64);

/// Sets `limits` (soft and hard) in `cmd`'s child before it starts: `RLIMIT_AS` for `ulimit -v`,
/// `RLIMIT_FSIZE` for `ulimit -f`, `RLIMIT_CORE` 0 for no core files. With `ignore_sigxfsz`, a
/// write past `RLIMIT_FSIZE` fails with EFBIG instead of killing the child.
pub fn with_limits(cmd: &mut Command, limits: &[Limit], ignore_sigxfsz: bool) {
    use std::os::unix::process::CommandExt;
    let limits = limits.to_vec();
    // SAFETY: setrlimit and signal are async-signal-safe, as pre_exec requires, and the closure
    // only reads the vector made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for &(resource, value) in &limits {
                let limit = libc::rlimit {
                    rlim_cur: value,
                    rlim_max: value,
                };
                libc::setrlimit(resource, &limit);
            }
            if ignore_sigxfsz {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            }
            Ok(())
        });
    }
}

/// The names of the files in `dir`, sorted.
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Waits for `child`, killing it if it has not ended after `secs` seconds (a watchdog against a
/// hang, not a timing check); returns its output and whether it had to be killed.
pub fn wait_or_kill(mut child: std::process::Child, secs: u64) -> (Output, bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut killed = false;
    while child.try_wait().expect("wait for wgpu-mlp").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            killed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    (child.wait_with_output().expect("wgpu-mlp output"), killed)
}

/// The permission bits of `path` (Unix).
pub fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Asserts that `text` (a command's output) holds no raw control character but line ends, and no
/// bidirectional override: untrusted text must reach the terminal escaped.
pub fn assert_no_raw_controls(text: &str, what: &str) {
    if let Some(c) = cli_args::raw_control(text) {
        panic!("{what}: raw {c:?} in {text:?}");
    }
}
