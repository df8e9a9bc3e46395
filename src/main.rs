//! The `wgpu-mlp` command line.
//!
//! ```text
//! wgpu-mlp summary --layers 784,128,64,10 --act relu,relu,softmax [--batch N]
//! wgpu-mlp summary --weights model.safetensors --act relu,relu,softmax [--batch N]
//! wgpu-mlp init --layers 784,128,10 [--act relu,softmax] --seed 42 --output model.safetensors
//! wgpu-mlp infer --weights model.safetensors --act relu,relu,softmax --input x.npy --output y.npy
//!                [--device cpu|gpu|auto] [--adapter NAME]
//! wgpu-mlp adapters
//! wgpu-mlp [bench] [--full] [--workload gemm,mnist,...] [--batch N,...] [--sizes N,...]
//!                  [--paths cpu-fast,gpu-e2e,...] [--runs N] [--warmup N] [--budget SECS]
//!                  [--adapter NAME] [--json FILE] [--plot FILE.svg]
//! ```
//!
//! With no subcommand, `wgpu-mlp` runs the quick benchmark (`wgpu-mlp bench`).
//!
//! Every error prints `error: <message>` on stderr and exits with status 1 (usage errors
//! included); no command leaves a partial output file behind.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions, list_adapters};
use wgpu_mlp::io::{self, MatrixFormat};
use wgpu_mlp::{Activation, DEFAULT_SEED, Error, Layer, Matrix, Mlp, Result};

/// PyTorch-style multi-layer perceptrons on the GPU (WGSL + wgpu), checked against an exact CPU
/// reference.
#[derive(Debug, Parser)]
#[command(name = "wgpu-mlp", version, about, propagate_version = true)]
struct Cli {
    /// With no subcommand: the quick benchmark (`bench`).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the torchsummary table of a model (from layer widths or a weights file).
    Summary(SummaryArgs),
    /// Create a model with PyTorch's default init and save it as safetensors.
    Init(InitArgs),
    /// Run a model on an input matrix (.npy or .csv) and write the output (.npy or .csv).
    Infer(InferArgs),
    /// List the GPU adapters wgpu finds (WGPU_BACKEND narrows the backends) and the default choice.
    Adapters,
    /// Benchmark CPU against GPU on the standard workloads (the default command: a quick run).
    Bench(BenchArgs),
}

/// Where the model comes from: layer widths or a weights file (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct ModelSource {
    /// Layer widths, input first: e.g. 784,128,64,10 (three Linear layers).
    #[arg(long, value_name = "W0,W1,...")]
    layers: Option<String>,

    /// A safetensors state_dict (an nn.Sequential's, or named modules with --names).
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SummaryArgs {
    #[command(flatten)]
    source: ModelSource,

    /// One activation per Linear layer, comma separated (default: identity everywhere).
    /// Names: identity, sigmoid, tanh, relu, leaky_relu[:SLOPE], softmax, gelu, gelu_tanh, silu,
    /// elu[:ALPHA].
    #[arg(long, value_name = "A1,A2,...")]
    act: Option<String>,

    /// Batch size shown in the table; -1 (the default) shows -1 as torchsummary does.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    batch: i64,

    /// Module names of the layers, in order, for weights with named modules (e.g. fc1,fc2).
    #[arg(long, value_name = "N1,N2,...", requires = "weights")]
    names: Option<String>,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Layer widths, input first: e.g. 784,128,10 (two Linear layers).
    #[arg(long, value_name = "W0,W1,...")]
    layers: String,

    /// One activation per Linear layer (default: identity everywhere). They decide the module
    /// indices of the saved keys, as in the equivalent nn.Sequential.
    #[arg(long, value_name = "A1,A2,...")]
    act: Option<String>,

    /// Seed: the weights equal those of torch.manual_seed(SEED) then building the same layers.
    /// From -9223372036854775808 to 18446744073709551615, as torch takes; a negative seed s is
    /// 2^64 + s, as in torch.
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    seed: u64,

    /// Where to write the safetensors file.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct InferArgs {
    /// A safetensors state_dict.
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,

    /// One activation per Linear layer, comma separated (default: identity everywhere).
    #[arg(long, value_name = "A1,A2,...")]
    act: Option<String>,

    /// Input matrix [batch, in]: .npy (<f4 or <f8) or .csv.
    #[arg(long, short, value_name = "FILE")]
    input: PathBuf,

    /// Output matrix [batch, out]: .npy or .csv.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,

    /// Where to run the forward pass.
    #[arg(long, value_enum, default_value_t = Device::Auto)]
    device: Device,

    /// GPU adapter to use (a substring of its name).
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,

    /// Module names of the layers, in order, for weights with named modules (e.g. fc1,fc2).
    #[arg(long, value_name = "N1,N2,...")]
    names: Option<String>,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Every workload and size (adds gemm 1024 and 2048, and wide b1024); minutes on a CPU.
    /// The default is a quick run: gemm 256 and 512, mnist b1, b64 and b1024, seed, roundtrip.
    #[arg(long, conflicts_with = "quick")]
    full: bool,

    /// The quick run (the default).
    #[arg(long)]
    quick: bool,

    /// Workloads to run: gemm, mnist, wide, seed, roundtrip (repeatable or comma separated).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    workload: Vec<String>,

    /// Batch sizes for mnist, wide and seed, replacing their defaults (e.g. 1,64,1024).
    #[arg(long, value_name = "N,...", value_delimiter = ',', value_parser = parse_count, allow_negative_numbers = true)]
    batch: Option<Vec<usize>>,

    /// GEMM sizes M = N = K, replacing the defaults (e.g. 256,512).
    #[arg(long, value_name = "N,...", value_delimiter = ',', value_parser = parse_count, allow_negative_numbers = true)]
    sizes: Option<Vec<usize>>,

    /// Paths to run: cpu-reference, cpu-fast, gpu-e2e, gpu-resident (default: all).
    #[arg(long, value_name = "PATH", value_delimiter = ',')]
    paths: Vec<String>,

    /// Timed runs per path (fewer, at least 3, when a path exceeds --budget).
    #[arg(long, default_value_t = 10, value_parser = parse_count, allow_negative_numbers = true)]
    runs: usize,

    /// Untimed warm-up runs per path.
    #[arg(long, default_value_t = 3, value_parser = parse_count, allow_negative_numbers = true)]
    warmup: usize,

    /// Seconds per path after which timing stops once 3 runs are done (default 5, 20 with
    /// --full); 0: no limit.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    budget: Option<f64>,

    /// GPU adapter to use (a substring of its name).
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,

    /// How the GPU paths store weights: f32 (exact) or f16 (half the memory; f32 arithmetic).
    #[arg(long, value_name = "FORMAT", default_value = "f32", value_parser = ["f32", "f16"])]
    weight_format: String,

    /// Which kernel the GPU paths run for each Linear layer: auto (by adapter and shape),
    /// windowed, blocked, gemv, tiled64 or tiled128.
    #[arg(long, value_name = "KERNEL", default_value = "auto")]
    kernel: wgpu_mlp::gpu::LinearKernel,

    /// Run the GPU kernels without subgroup operations even where the adapter has them (as on
    /// devices without them), to compare.
    #[arg(long)]
    no_subgroups: bool,

    /// Also write every figure as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Also draw throughput against batch size and GEMM size as an SVG.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// Where `infer` runs the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Device {
    /// The GPU when one is available, the CPU otherwise.
    Auto,
    /// The CPU reference (f64 accumulation, rounded to f32).
    Cpu,
    /// The GPU; an error when none is available.
    Gpu,
}

fn main() -> ExitCode {
    // A panic is a bug; report it like any other error, without a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "error: internal error (this is a bug): {}",
            wgpu_mlp::escape(&info.to_string())
        );
    }));
    // Ctrl-C or a kill while an output is being written removes the temporary file.
    if let Err(e) = io::remove_temp_files_on_signals() {
        eprintln!("warning: {e}");
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    match std::panic::catch_unwind(|| run_args(&args)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(Failure::Info(e))) => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        Ok(Err(Failure::Usage(e, escaped))) => {
            match escaped {
                Some(text) => eprint!("{text}"),
                // As clap prints it (in colour on a terminal).
                None => {
                    let _ = e.print();
                }
            }
            ExitCode::FAILURE
        }
        Ok(Err(Failure::Run(e))) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}

/// How a run ends when it does not simply succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// `--help` or `--version`: text for stdout, and success.
    Info(clap::Error),
    /// A usage error from clap, and its text with the arguments escaped when any argument
    /// needed it (see [`usage_error`]).
    Usage(clap::Error, Option<String>),
    /// Any other error: printed as `error: {e}`.
    Run(Error),
}

/// The whole command line: parses `args` (the program name first) and runs the command. The
/// binary is this plus printing; the fuzz target calls it directly.
pub(crate) fn run_args(args: &[OsString]) -> std::result::Result<(), Failure> {
    let cli = Cli::try_parse_from(args).map_err(|e| {
        use clap::error::ErrorKind;
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Failure::Info(e),
            _ => {
                let escaped = usage_error(&e, args);
                Failure::Usage(e, escaped)
            }
        }
    })?;
    run(cli).map_err(Failure::Run)
}

/// The text to show for a usage error when clap's own would not do. clap quotes the offending
/// argument as it was typed, so when any argument holds a control character (or is not UTF-8) the
/// arguments are parsed again in their escaped form ([`wgpu_mlp::escape`]) and that error, which
/// quotes them escaped, is returned. `None`: no argument needed escaping.
fn usage_error(e: &clap::Error, args: &[OsString]) -> Option<String> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| wgpu_mlp::escape(&a.to_string_lossy()).into_owned())
        .collect();
    if shown.iter().zip(args).all(|(s, a)| a == s.as_str()) {
        return None;
    }
    Some(match Cli::try_parse_from(&shown) {
        Err(again) if again.kind() == e.kind() => again.render().to_string(),
        // Not the same failure once escaped: escape the whole message, line breaks included.
        _ => format!("{}\n", wgpu_mlp::escape(e.render().to_string().trim_end())),
    })
}

fn run(cli: Cli) -> Result<()> {
    let command = match cli.command {
        Some(c) => c,
        // No subcommand: the quick benchmark, with `bench`'s defaults.
        None => Cli::try_parse_from(["wgpu-mlp", "bench"])
            .ok()
            .and_then(|c| c.command)
            .ok_or_else(|| Error::InvalidArgument("no subcommand".into()))?,
    };
    match command {
        Command::Summary(args) => summary(args),
        Command::Init(args) => init(args),
        Command::Infer(args) => infer(args),
        Command::Adapters => adapters(),
        Command::Bench(args) => bench(args),
    }
}

fn summary(args: SummaryArgs) -> Result<()> {
    let acts = parse_acts(args.act.as_deref())?;
    let model = match (&args.source.layers, &args.source.weights) {
        (Some(layers), _) => build_model(&parse_widths(layers)?, acts, DEFAULT_SEED)?,
        (None, Some(weights)) => {
            let names = parse_names(args.names.as_deref())?;
            load_model(weights, acts, names.as_deref())?
        }
        (None, None) => return Err(Error::InvalidArgument("give --layers or --weights".into())),
    };
    let text = wgpu_mlp::summary::summary(&model, args.batch);
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| {
            if text.is_empty() || text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        // `wgpu-mlp summary | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            return Err(Error::Io {
                path: PathBuf::from("<stdout>"),
                source: e,
            });
        }
    }
    warn(&model);
    Ok(())
}

fn init(args: InitArgs) -> Result<()> {
    let widths = parse_widths(&args.layers)?;
    let acts = parse_acts(args.act.as_deref())?;
    io::check_output(&args.output, &[])?;
    // Layers over the per-tensor limit are refused by the builder (before it allocates), with a
    // message naming the layer; within the limit, the whole model must fit in memory.
    let within_limit = widths.windows(2).all(|p| {
        p[0].checked_mul(p[1])
            .is_some_and(|n| n <= Mlp::MAX_TENSOR_ELEMENTS)
    });
    if within_limit {
        let params = wgpu_mlp::memory::params(&widths);
        wgpu_mlp::memory::check(
            12 * params,
            &format!(
                "init: the model ({params} parameters of 4 bytes, held three times while it is \
                 saved)"
            ),
            "give smaller --layers",
        )?;
    }
    let model = build_model(&widths, acts, args.seed)?;
    io::safetensors::save_model(&args.output, &model)?;
    warn(&model);
    Ok(())
}

fn infer(args: InferArgs) -> Result<()> {
    // Check everything cheap before doing any work.
    MatrixFormat::from_path(&args.input)?;
    MatrixFormat::from_path(&args.output)?;
    io::check_output(
        &args.output,
        &[("the input", &args.input), ("the weights", &args.weights)],
    )?;
    let acts = parse_acts(args.act.as_deref())?;
    let names = parse_names(args.names.as_deref())?;
    // The files are held while they are parsed: the bytes, and at most twice as many as f32
    // values (f16 weights, or a CSV of one-digit numbers).
    let files =
        u128::from(io::check_input(&args.weights)?) + u128::from(io::check_input(&args.input)?);
    wgpu_mlp::memory::check(
        3 * files,
        &format!(
            "infer: reading {} and {} ({} together)",
            args.weights.display(),
            args.input.display(),
            wgpu_mlp::memory::bytes(files)
        ),
        "use smaller files",
    )?;
    let model = load_model(&args.weights, acts, names.as_deref())?;
    let input = match MatrixFormat::from_path(&args.input)? {
        // How a CSV was read (rows, delimiter, whether line 1 was a header) is worth a line:
        // nothing is dropped silently.
        MatrixFormat::Csv => {
            let parsed = io::csv::read_parsed(&args.input)?;
            eprintln!(
                "note: {}: {}",
                wgpu_mlp::escape(&args.input.display().to_string()),
                wgpu_mlp::escape(&parsed.describe())
            );
            parsed.matrix
        }
        MatrixFormat::Npy => io::read_matrix(&args.input)?,
    };
    model.check_input(input.rows(), input.cols())?;
    let widths: Vec<usize> = std::iter::once(model.in_features())
        .chain(model.linears().map(|l| l.out_features()))
        .collect();
    wgpu_mlp::memory::check(
        wgpu_mlp::memory::forward_bytes(
            &widths,
            wgpu_mlp::memory::params(&widths),
            input.rows(),
            args.device != Device::Cpu,
        ),
        &format!(
            "infer: the forward pass of {} rows through layers of widths {widths:?}",
            input.rows()
        ),
        "give fewer rows at a time",
    )?;
    let output = run_forward(&model, &input, args.device, args.adapter)?;
    io::write_matrix(&args.output, &output)?;
    warn(&model);
    Ok(())
}

/// Runs the forward pass on the chosen device.
fn run_forward(
    model: &Mlp,
    input: &Matrix,
    device: Device,
    adapter: Option<String>,
) -> Result<Matrix> {
    model.check_input(input.rows(), input.cols())?;
    let gpu_context = || {
        GpuContext::new(&GpuOptions {
            adapter_name: adapter.clone(),
            ..GpuOptions::default()
        })
    };
    let on_gpu = |ctx: &GpuContext| {
        let a = ctx.adapter();
        eprintln!(
            "running on {}",
            wgpu_mlp::escape(&format!("{} ({}, {})", a.name, a.backend, a.device_type))
        );
        GpuMlp::new(ctx, model)?.forward(input)
    };
    match device {
        Device::Cpu => wgpu_mlp::cpu::forward(model, input),
        Device::Gpu => on_gpu(&gpu_context()?),
        Device::Auto => match gpu_context() {
            Ok(ctx) => on_gpu(&ctx),
            Err(Error::NoAdapter(msg)) => {
                eprintln!(
                    "note: no GPU adapter ({}); running on the CPU",
                    wgpu_mlp::escape(&msg)
                );
                wgpu_mlp::cpu::forward(model, input)
            }
            Err(e) => Err(e),
        },
    }
}

fn adapters() -> Result<()> {
    let found = list_adapters(None)?;
    if found.is_empty() {
        println!("no adapters found");
    }
    for (i, a) in found.iter().enumerate() {
        println!(
            "{i}: {} | backend {} | type {} | driver {}",
            a.name, a.backend, a.device_type, a.driver
        );
    }
    match GpuContext::new(&GpuOptions::default()) {
        Ok(ctx) => println!("default choice: {}", ctx.adapter().name),
        Err(e) => println!("default choice: none ({e})"),
    }
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    use wgpu_mlp::bench::{self, BenchOptions, BenchPath, Progress, Workload};
    let budget = args.budget.unwrap_or(if args.full { 20.0 } else { 5.0 });
    let budget = match std::time::Duration::try_from_secs_f64(budget) {
        Ok(d) if budget.is_finite() => (!d.is_zero()).then_some(d),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "--budget {budget}: give a number of seconds from 0 (no limit) to {}",
                u64::MAX
            )));
        }
    };
    let opts = BenchOptions {
        workloads: args
            .workload
            .iter()
            .map(|w| Workload::parse(w))
            .collect::<Result<_>>()?,
        batches: args.batch,
        sizes: args.sizes,
        paths: args
            .paths
            .iter()
            .map(|p| BenchPath::parse(p))
            .collect::<Result<_>>()?,
        full: args.full,
        warmup: args.warmup,
        runs: args.runs,
        budget,
        adapter: args.adapter,
        weights: if args.weight_format == "f16" {
            wgpu_mlp::gpu::WeightFormat::F16
        } else {
            wgpu_mlp::gpu::WeightFormat::F32
        },
        kernel: args.kernel,
        subgroups: !args.no_subgroups,
        progress: Progress::auto(),
        ..BenchOptions::default()
    };
    // Options and output folders checked before any work.
    opts.cases()?;
    if let Some(json) = &args.json {
        io::check_output(json, &[])?;
    }
    if let Some(plot) = &args.plot {
        let others: Vec<(&str, &Path)> =
            args.json.iter().map(|j| ("--json", j.as_path())).collect();
        io::check_output(plot, &others)?;
    }
    let report = bench::run(&opts)?;
    if let Some(path) = &args.json {
        io::write_atomic(path, report.to_json().as_bytes())?;
    }
    if let Some(path) = &args.plot {
        io::write_atomic(path, bench::svg(&report).as_bytes())?;
    }
    let mut out = std::io::stdout().lock();
    match out
        .write_all(report.to_markdown().as_bytes())
        .and_then(|()| out.flush())
    {
        // `wgpu-mlp bench | head` is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            path: PathBuf::from("<stdout>"),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Prints the model's diagnostics as warnings on stderr.
fn warn(model: &Mlp) {
    for d in model.diagnostics() {
        eprintln!("warning: {}", wgpu_mlp::escape(&d.to_string()));
    }
}

/// Builds a model with PyTorch's default init from widths (input first) and one activation per
/// Linear layer (`None`: identity everywhere).
fn build_model(widths: &[usize], acts: Option<Vec<Activation>>, seed: u64) -> Result<Mlp> {
    let n_layers = widths.len() - 1;
    let acts = acts_for(acts, n_layers, "--layers")?;
    let mut builder = Mlp::builder(widths[0]).seed(seed);
    for (&w, act) in widths[1..].iter().zip(acts) {
        builder = builder.layer(w, act);
    }
    builder.build()
}

/// Loads a weights file with one activation per Linear layer (`None`: identity everywhere), or,
/// without `--act`, a self-describing file (`wgpu_mlp.arch` metadata) as it describes itself:
/// norms, dropout and activations included, so `summary --weights` prints the same table as
/// `wgpu_mlp::summary::summary` of the loaded model (and the browser page).
fn load_model(path: &Path, acts: Option<Vec<Activation>>, names: Option<&[String]>) -> Result<Mlp> {
    if acts.is_none() {
        // The loaders' own reader: regular files only, no more than their size (a FIFO or
        // /dev/zero is refused, never read).
        let bytes = io::read_file(path)?;
        let source = path.display().to_string();
        if io::safetensors::metadata(&bytes, &source)?.0.is_some() {
            return io::safetensors::from_bytes(&bytes, &source, None, names);
        }
    }
    let linears = io::safetensors::load_layers(path, names)?;
    let acts = acts_for(acts, linears.len(), &path.display().to_string())?;
    Mlp::from_layers(
        linears
            .into_iter()
            .zip(acts)
            .map(|(linear, activation)| Layer { linear, activation })
            .collect(),
    )
}

/// The activations, checked against the number of Linear layers.
fn acts_for(acts: Option<Vec<Activation>>, n_layers: usize, what: &str) -> Result<Vec<Activation>> {
    match acts {
        None => Ok(vec![Activation::Identity; n_layers]),
        Some(a) if a.len() == n_layers => Ok(a),
        Some(a) => Err(Error::InvalidArgument(format!(
            "--act lists {} activation(s) but {what} has {n_layers} Linear layer(s); \
             give one per layer (identity for none)",
            a.len()
        ))),
    }
}

fn parse_acts(s: Option<&str>) -> Result<Option<Vec<Activation>>> {
    s.map(wgpu_mlp::activation::parse_list).transpose()
}

/// Parses `784,128,10`: at least two widths (input and one layer), each at least 1.
fn parse_widths(s: &str) -> Result<Vec<usize>> {
    let widths = s
        .split(',')
        .map(|w| {
            let w = w.trim();
            match w.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Error::InvalidArgument(format!(
                    "--layers: '{w}' is not a positive integer width"
                ))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    if widths.len() < 2 {
        return Err(Error::InvalidArgument(format!(
            "--layers '{s}': give the input width and at least one layer width, e.g. 784,128,10"
        )));
    }
    Ok(widths)
}

/// Parses `fc1,fc2` into layer names.
fn parse_names(s: Option<&str>) -> Result<Option<Vec<String>>> {
    let Some(s) = s else { return Ok(None) };
    let names: Vec<String> = s.split(',').map(|n| n.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err(Error::InvalidArgument(format!(
            "--names '{s}': empty layer name"
        )));
    }
    Ok(Some(names))
}

/// A seed as torch.manual_seed takes it: -2^63 to 2^64 - 1, a negative seed s meaning 2^64 + s.
fn parse_seed(s: &str) -> std::result::Result<u64, String> {
    match s.trim().parse::<i128>() {
        Ok(n) if (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&n) => {
            // Two's complement: -1 is 2^64 - 1, as torch.initial_seed() reports it.
            Ok(n as u64)
        }
        _ => Err(format!(
            "seeds are whole numbers from {} to {} (torch.manual_seed's range; a negative seed s \
             is 2^64 + s)",
            i64::MIN,
            u64::MAX
        )),
    }
}

/// A count or size: a whole number from 0 to usize::MAX (the commands say which must be at least 1).
fn parse_count(s: &str) -> std::result::Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .map_err(|_| format!("give a whole number from 0 to {}", usize::MAX))
}
