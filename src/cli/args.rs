//! The command line's arguments (clap), one struct per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use wgpu_mlp::DEFAULT_SEED;

/// PyTorch-style multi-layer perceptrons on the GPU (WGSL + wgpu) and the CPU, checked against an
/// exact CPU reference.
#[derive(Debug, Parser)]
#[command(name = "wgpu-mlp", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// With no subcommand: the quick benchmark (`bench`).
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the torchsummary table of a model (from layer widths or a model file).
    Summary(SummaryArgs),
    /// Create a model with PyTorch's default init and save it as a self-describing safetensors
    /// file.
    Init(InitArgs),
    /// Run a model on an input matrix (.npy, .npz, .csv or stdin) and write the output (.npy,
    /// .csv, .json or stdout), its values, --argmax or --top-k.
    Infer(InferArgs),
    /// Train a model (a state_dict, or new from --layers) on an input and its targets, step for
    /// step as PyTorch's training loop, and write the trained state_dict.
    Train(Box<TrainArgs>),
    /// List the GPU adapters wgpu finds (WGPU_BACKEND narrows the backends), the default choice,
    /// and where `infer --device auto` would run.
    Adapters,
    /// Benchmark the CPU paths against the GPU on the standard workloads (the default command:
    /// a quick run).
    Bench(BenchArgs),
}

/// How the modules between the tensors are given: the architecture, or the activations after
/// each Linear layer (at most one of the two).
#[derive(Debug, Args)]
#[group(multiple = false)]
pub(crate) struct ArchArgs {
    /// The modules in forward order, lower-case PyTorch names, parameters after colons, e.g.
    /// linear,batchnorm1d,relu,dropout,linear,layernorm,gelu,linear,softmax. F.<name> is a
    /// function called in forward() (no summary row), e.g. linear,F.sigmoid,linear. Modules:
    /// linear, batchnorm1d[:eps], layernorm[:eps], dropout[:p], flatten, identity, prelu and the
    /// activations of --act.
    #[arg(long, value_name = "M1,M2,...", allow_hyphen_values = true)]
    pub(crate) arch: Option<String>,

    /// Shorthand for Linear layers each followed by an activation module, one per layer:
    /// identity (none), relu, sigmoid, tanh, leaky_relu[:slope], elu[:alpha], selu, celu[:alpha],
    /// gelu, gelu_tanh, silu, mish, softplus[:beta[:threshold]], hardtanh[:min:max], relu6,
    /// hardsigmoid, hardswish, softmax, log_softmax.
    #[arg(long, value_name = "A1,A2,...", allow_hyphen_values = true)]
    pub(crate) act: Option<String>,
}

/// Where the model comes from: layer widths or a model file (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct ModelSource {
    /// Layer widths, input first: e.g. 784,128,64,10 (three Linear layers).
    #[arg(long, value_name = "W0,W1,...", allow_hyphen_values = true)]
    pub(crate) layers: Option<String>,

    /// A model file: .onnx, or a safetensors state_dict (self-describing, or with --arch / --act).
    #[arg(long, value_name = "FILE")]
    pub(crate) weights: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SummaryArgs {
    #[command(flatten)]
    pub(crate) source: ModelSource,

    #[command(flatten)]
    pub(crate) arch: ArchArgs,

    /// Batch size shown in the table; -1 (the default) shows -1 as torchsummary does.
    #[arg(long, default_value_t = -1, value_parser = parse_batch, allow_negative_numbers = true)]
    pub(crate) batch: i64,

    /// Module names of the modules with tensors, in forward order (e.g. fc1,fc2), where the
    /// natural order of the names in the file is not the forward order; `-` for a LayerNorm
    /// without tensors (elementwise_affine=False) where the file leaves it ambiguous.
    #[arg(
        long,
        value_name = "N1,N2,...",
        requires = "weights",
        allow_hyphen_values = true
    )]
    pub(crate) names: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Layer widths, input first: e.g. 784,128,10 (two Linear layers).
    #[arg(long, value_name = "W0,W1,...", allow_hyphen_values = true)]
    pub(crate) layers: String,

    #[command(flatten)]
    pub(crate) arch: ArchArgs,

    /// Seed: the weights equal those of torch.manual_seed(SEED) then building the same modules.
    /// From -9223372036854775808 to 18446744073709551615, as torch takes; a negative seed s is
    /// 2^64 + s, as in torch.
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub(crate) seed: u64,

    /// Where to write the safetensors file.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct InferArgs {
    /// The model: .onnx, or a safetensors state_dict (self-describing, or with --arch / --act).
    #[arg(long, value_name = "FILE")]
    pub(crate) weights: PathBuf,

    #[command(flatten)]
    pub(crate) arch: ArchArgs,

    /// Input [batch, features]: .npy (float, integer or bool, any byte or memory order; N-D
    /// for a model that starts with Flatten), .npz (its one array, or FILE.npz:NAME), .csv,
    /// or - for standard input (CSV or .npy, told by its first bytes).
    #[arg(long, short, value_name = "FILE", allow_hyphen_values = true)]
    pub(crate) input: PathBuf,

    /// Output [batch, out]: .npy, .csv, .json, or - for CSV on standard output (nothing else
    /// is written there).
    #[arg(long, short, value_name = "FILE", allow_hyphen_values = true)]
    pub(crate) output: PathBuf,

    /// Write each row's predicted class instead of its values: the index of its largest value
    /// (the first of equals; a NaN counts as largest, as torch.argmax).
    #[arg(long, conflicts_with = "top_k")]
    pub(crate) argmax: bool,

    /// Write each row's K largest values and their indices, largest first (torch.topk): K
    /// indices then K values per CSV line, {"indices": [...], "values": [...]} per JSON row.
    #[arg(long, value_name = "K", value_parser = parse_count, allow_negative_numbers = true)]
    pub(crate) top_k: Option<usize>,

    /// Read, run and write N rows at a time, so inputs larger than memory run in constant
    /// memory (.npy in C order or .csv, from a file or standard input).
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    pub(crate) batch_size: Option<usize>,

    /// Where to run the forward pass.
    #[arg(long, value_enum, default_value_t = Device::Auto)]
    pub(crate) device: Device,

    /// GPU adapter to use: a substring of its name, backend or driver (e.g. nvidia, vulkan, gl).
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub(crate) adapter: Option<String>,

    /// Threads of the CPU path (default, or 0: one per core).
    #[arg(long, value_name = "N", value_parser = parse_threads, allow_negative_numbers = true)]
    pub(crate) threads: Option<usize>,

    /// How the GPU stores weights: f32 (exact, the default) or f16 (half the memory; f32
    /// arithmetic), as in bench.
    #[arg(long, value_name = "FORMAT", value_parser = ["f32", "f16"])]
    pub(crate) weight_format: Option<String>,

    /// Which kernel the GPU runs for each Linear layer: auto (the default: by adapter and
    /// shape), windowed, blocked, gemv, tiled64 or tiled128, as in bench.
    #[arg(long, value_name = "KERNEL")]
    pub(crate) kernel: Option<wgpu_mlp::gpu::LinearKernel>,

    /// Module names of the modules with tensors, in forward order (e.g. fc1,fc2), where the
    /// natural order of the names in the file is not the forward order; `-` for a LayerNorm
    /// without tensors (elementwise_affine=False) where the file leaves it ambiguous.
    #[arg(long, value_name = "N1,N2,...", allow_hyphen_values = true)]
    pub(crate) names: Option<String>,
}

/// `train`'s arguments (the command is in `cli/train.rs`).
#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    #[command(flatten)]
    pub(crate) source: ModelSource,

    #[command(flatten)]
    pub(crate) arch: ArchArgs,

    /// Module names of the modules with tensors, in forward order (as `infer --names`).
    #[arg(
        long,
        value_name = "N1,N2,...",
        requires = "weights",
        allow_hyphen_values = true
    )]
    pub(crate) names: Option<String>,

    /// Seed of a new model's init (with --layers): torch.manual_seed(SEED) then the modules.
    #[arg(long, value_parser = parse_seed, allow_negative_numbers = true, conflicts_with = "weights")]
    pub(crate) seed: Option<u64>,

    /// Input matrix [n, in]: .npy (<f4 or <f8) or .csv, read as `infer` reads it.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) input: PathBuf,

    /// Targets: [n, out] values (.npy or .csv), or n class indices for cross_entropy and nll
    /// (an integer .npy, or a CSV of whole numbers).
    #[arg(long, value_name = "FILE")]
    pub(crate) target: PathBuf,

    /// The loss: mse, l1, smooth_l1[:beta], huber[:delta], cross_entropy[:label_smoothing],
    /// nll, bce, bce_with_logits.
    #[arg(long, value_name = "LOSS")]
    pub(crate) loss: String,

    /// How the loss combines the elements: mean or sum.
    #[arg(long, default_value = "mean", value_parser = ["mean", "sum"])]
    pub(crate) reduction: String,

    /// The optimizer.
    #[arg(long, value_parser = ["sgd", "adam", "adamw"])]
    pub(crate) optim: String,

    /// Learning rate (PyTorch's default 0.001).
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub(crate) lr: f64,

    /// SGD momentum.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) momentum: Option<f64>,

    /// SGD dampening.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) dampening: Option<f64>,

    /// SGD Nesterov momentum.
    #[arg(long)]
    pub(crate) nesterov: bool,

    /// Weight decay (default 0; 0.01 for adamw, decoupled).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) weight_decay: Option<f64>,

    /// Adam/AdamW betas (default 0.9,0.999).
    #[arg(long, value_name = "B1,B2", allow_hyphen_values = true)]
    pub(crate) betas: Option<String>,

    /// Adam/AdamW eps (default 1e-8).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) eps: Option<f64>,

    /// Adam/AdamW AMSGrad.
    #[arg(long)]
    pub(crate) amsgrad: bool,

    /// Epochs over the data set.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub(crate) epochs: usize,

    /// Rows per batch.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub(crate) batch_size: usize,

    /// Shuffle each epoch as DataLoader(shuffle=True, generator=torch.Generator().manual_seed(S))
    /// does; without it the rows are taken in order.
    #[arg(long, value_parser = parse_seed, allow_negative_numbers = true)]
    pub(crate) shuffle_seed: Option<u64>,

    /// Drop each epoch's last batch when it is short.
    #[arg(long)]
    pub(crate) drop_last: bool,

    /// Where to train: auto (a hardware GPU when there is one and it trains every module of
    /// the model, else the fast CPU path; says on stderr which and why), gpu, cpu,
    /// cpu-reference.
    #[arg(long, value_enum, default_value_t = Device::Auto)]
    pub(crate) device: Device,

    /// GPU adapter to train on: a substring of its name, backend or driver (as infer's).
    #[arg(long, value_name = "NAME")]
    pub(crate) adapter: Option<String>,

    /// Where to write the trained state_dict (.safetensors).
    #[arg(long, short, value_name = "FILE")]
    pub(crate) output: PathBuf,

    /// Also write one JSON line per step: {"step","epoch","batch","loss"}, and one per epoch
    /// (no "step" key): the epoch's loss, accuracy, validation and gradient health.
    #[arg(long, value_name = "STEPS.jsonl")]
    pub(crate) log: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) tool: Box<TrainToolArgs>,
}

/// `train`'s validation, plot and checkpoint flags (cli/train_run.rs).
#[derive(Debug, Args)]
pub(crate) struct TrainToolArgs {
    /// Validation input, evaluated in eval mode after every epoch (with --val-target).
    #[arg(
        long,
        value_name = "FILE",
        requires = "val_target",
        conflicts_with = "val_split"
    )]
    pub(crate) val_input: Option<PathBuf>,

    /// Validation targets, as --target.
    #[arg(long, value_name = "FILE", requires = "val_input")]
    pub(crate) val_target: Option<PathBuf>,

    /// Hold out the last fraction F of the rows (0 < F < 1) for validation.
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub(crate) val_split: Option<f64>,

    /// Write the loss and accuracy curves (train and validation, per epoch) as an SVG.
    #[arg(long, value_name = "CURVES.svg")]
    pub(crate) plot: Option<PathBuf>,

    /// Measure gradient health on the GPU too (the CPU paths always do): after every step the
    /// parameters are read back and the step recomputed on the f64 CPU reference, many times
    /// the GPU step's own time (docs/TRAINING.md, "Gradient health").
    #[arg(long)]
    pub(crate) health: bool,

    /// Write a checkpoint every N epochs (to --checkpoint).
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    pub(crate) checkpoint_every: Option<usize>,

    /// The checkpoint file (default: the output's name with .checkpoint.safetensors).
    #[arg(long, value_name = "FILE", requires = "checkpoint_every")]
    pub(crate) checkpoint: Option<PathBuf>,

    /// Continue from a checkpoint, exactly as the uninterrupted run would (same flags; --epochs
    /// is the total).
    #[arg(long, value_name = "CHECKPOINT")]
    pub(crate) resume: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Every workload and size (adds gemm 1024 and 2048, wide b1024, and the train step at
    /// b64 and b1024); minutes on a CPU.
    /// The default is a quick run: gemm 256 and 512, mnist b1, b64 and b1024, seed, roundtrip,
    /// transfer.
    #[arg(long, conflicts_with = "quick")]
    pub(crate) full: bool,

    /// The quick run (the default).
    #[arg(long)]
    pub(crate) quick: bool,

    /// Workloads to run: gemm, mnist, wide, seed, train, roundtrip, transfer (repeatable or
    /// comma separated).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub(crate) workload: Vec<String>,

    /// Batch sizes for mnist, wide, seed and train, replacing their defaults (e.g. 1,64,1024).
    #[arg(long, value_name = "N,...", value_delimiter = ',', value_parser = parse_count, allow_negative_numbers = true)]
    pub(crate) batch: Option<Vec<usize>>,

    /// GEMM sizes M = N = K, replacing the defaults (e.g. 256,512); for transfer, MiB moved.
    #[arg(long, value_name = "N,...", value_delimiter = ',', value_parser = parse_count, allow_negative_numbers = true)]
    pub(crate) sizes: Option<Vec<usize>>,

    /// Paths to run: cpu-reference, cpu-fast, gpu-e2e, gpu-resident (default: all).
    #[arg(long, value_name = "PATH", value_delimiter = ',')]
    pub(crate) paths: Vec<String>,

    /// Timed runs per path (fewer, at least 3, when a path exceeds --budget).
    #[arg(long, default_value_t = 10, value_parser = parse_count, allow_negative_numbers = true)]
    pub(crate) runs: usize,

    /// Untimed warm-up runs per path.
    #[arg(long, default_value_t = 3, value_parser = parse_count, allow_negative_numbers = true)]
    pub(crate) warmup: usize,

    /// Seconds per path after which timing stops once 3 runs are done (default 5, 20 with
    /// --full); 0: no limit.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub(crate) budget: Option<f64>,

    /// GPU adapter to use: a substring of its name, backend or driver.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub(crate) adapter: Option<String>,

    /// Threads of the cpu-fast path (default, or 0: one per core).
    #[arg(long, value_name = "N", value_parser = parse_threads, allow_negative_numbers = true)]
    pub(crate) threads: Option<usize>,

    /// How the GPU paths store weights: f32 (exact) or f16 (half the memory; f32 arithmetic).
    #[arg(long, value_name = "FORMAT", default_value = "f32", value_parser = ["f32", "f16"])]
    pub(crate) weight_format: String,

    /// Which kernel the GPU paths run for each Linear layer: auto (by adapter and shape),
    /// windowed, blocked, gemv, tiled64 or tiled128.
    #[arg(long, value_name = "KERNEL", default_value = "auto")]
    pub(crate) kernel: wgpu_mlp::gpu::LinearKernel,

    /// Run the GPU kernels without subgroup operations even where the adapter has them (as on
    /// devices without them), to compare.
    #[arg(long)]
    pub(crate) no_subgroups: bool,

    /// Also write every figure as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// Also draw throughput against batch size and GEMM size as an SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
}

/// Where `infer` runs the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Device {
    /// A hardware GPU when there is one, else the fast CPU path (software adapters such as
    /// lavapipe only with --device gpu or a named --adapter); says on stderr which and why.
    Auto,
    /// The fast CPU path (f32, all cores).
    Cpu,
    /// The CPU reference (f64 within each operation, f32 between them): for checking.
    CpuReference,
    /// The GPU, software adapters included; an error when there is none.
    Gpu,
}

/// A seed as torch.manual_seed takes it: -2^63 to 2^64 - 1, a negative seed s meaning 2^64 + s.
pub(crate) fn parse_seed(s: &str) -> std::result::Result<u64, String> {
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
/// `summary --batch`: what torchsummary's `batch_size` takes, an int64 (-1 its default).
pub(crate) fn parse_batch(s: &str) -> std::result::Result<i64, String> {
    s.trim().parse::<i64>().map_err(|_| {
        format!(
            "give a whole number from {} to {} (-1, the default, as torchsummary shows it)",
            i64::MIN,
            i64::MAX
        )
    })
}

/// `--threads`: 0 (one per core) up to the most the CPU path's pool runs.
pub(crate) fn parse_threads(s: &str) -> std::result::Result<usize, String> {
    let max = wgpu_mlp::cpu::MAX_THREADS;
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| format!("give a whole number from 0 (one per core) to {max}"))
}

pub(crate) fn parse_count(s: &str) -> std::result::Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .map_err(|_| format!("give a whole number from 0 to {}", usize::MAX))
}
