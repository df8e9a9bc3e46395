//! The commands `summary`, `init`, `adapters` and `bench` (`infer` has a file of its own).

use std::io::Write;
use std::path::{Path, PathBuf};

use wgpu_mlp::gpu::{GpuContext, GpuOptions, list_adapters};
use wgpu_mlp::io;
use wgpu_mlp::{Error, Mlp, Result, escape, memory};

use crate::cli::args::{BenchArgs, Device, InitArgs, SummaryArgs};
use crate::cli::device;
use crate::cli::model::{self, Given};

pub(crate) fn summary(args: SummaryArgs) -> Result<()> {
    let given = Given::parse(&args.arch)?;
    let text = match (&args.source.layers, &args.source.weights) {
        (Some(_), _) if args.names.is_some() => {
            return Err(Error::InvalidArgument(
                "--names names the modules of a --weights file; --layers has no names to \
                 order: drop --names"
                    .into(),
            ));
        }
        (Some(layers), _) => {
            let widths = model::parse_widths(layers)?;
            let rows = model::rows(&widths, given)?;
            wgpu_mlp::summary::table(widths[0] as u64, &rows, args.batch)
        }
        (None, Some(weights)) => {
            let names = model::parse_names(args.names.as_deref())?;
            let m = model::load(weights, given, names.as_deref())?;
            warn(&m);
            wgpu_mlp::summary::summary(&m, args.batch)
        }
        (None, None) => return Err(Error::InvalidArgument("give --layers or --weights".into())),
    };
    print_stdout(&text)
}

pub(crate) fn init(args: InitArgs) -> Result<()> {
    let widths = model::parse_widths(&args.layers)?;
    let given = Given::parse(&args.arch)?;
    io::check_output(&args.output, &[])?;
    // Layers over the per-tensor limit are refused by the builder (before it allocates), with a
    // message naming the layer; within the limit, the whole model must fit in memory.
    let within_limit = widths.windows(2).all(|p| {
        p[0].checked_mul(p[1])
            .is_some_and(|n| n <= Mlp::MAX_TENSOR_ELEMENTS)
    });
    if within_limit {
        let params = memory::params(&widths);
        memory::check(
            12 * params,
            &format!(
                "init: the model ({params} parameters of 4 bytes, held three times while it is \
                 saved)"
            ),
            "give smaller --layers",
        )?;
    }
    let m = model::build(&widths, given, args.seed)?;
    io::safetensors::save_model(&args.output, &m)?;
    warn(&m);
    Ok(())
}

pub(crate) fn adapters() -> Result<()> {
    use std::fmt::Write as _;
    let found = list_adapters(None)?;
    let mut text = String::new();
    if found.is_empty() {
        text.push_str("no adapters found\n");
    }
    for (i, a) in found.iter().enumerate() {
        let _ = writeln!(
            text,
            "{i}: {} | backend {} | type {} | driver {}",
            escape(&a.name),
            a.backend,
            a.device_type,
            escape(&a.driver)
        );
    }
    let _ = match GpuContext::new(&GpuOptions::default()) {
        Ok(ctx) => writeln!(text, "default choice: {}", escape(&ctx.adapter().name)),
        Err(e) => writeln!(text, "default choice: none ({e})"),
    };
    let _ = match device::choose(Device::Auto, None, device::threads(None)) {
        Ok(device::Choice::Gpu(_, line) | device::Choice::Cpu(line)) => {
            writeln!(text, "infer --device auto: {}", escape(&line))
        }
        Ok(device::Choice::Reference) => Ok(()),
        Err(e) => writeln!(text, "infer --device auto: {e}"),
    };
    print_stdout(&text)
}

pub(crate) fn bench(args: BenchArgs) -> Result<()> {
    use wgpu_mlp::bench::{self, BenchOptions, BenchPath, Progress, Workload};
    let budget = args.budget.unwrap_or(if args.full { 20.0 } else { 5.0 });
    // The documented maximum, u64::MAX seconds, is 2⁶⁴ as an f64, a hair above Duration::MAX.
    let max = u64::MAX as f64;
    let budget = match std::time::Duration::try_from_secs_f64(budget) {
        Ok(d) if budget.is_finite() => (!d.is_zero()).then_some(d),
        Err(_) if budget >= 1.0 && budget <= max => Some(std::time::Duration::MAX),
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
        threads: device::threads(args.threads),
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
    // Both files or neither: a failed plot does not leave a new JSON beside the old plot.
    let json = args.json.as_ref().map(|p| (p, report.to_json()));
    let plot = args.plot.as_ref().map(|p| (p, bench::svg(&report)));
    let files: Vec<(&Path, &[u8])> = [json.as_ref(), plot.as_ref()]
        .into_iter()
        .flatten()
        .map(|(p, text)| (p.as_path(), text.as_bytes()))
        .collect();
    io::write_atomic_all(&files)?;
    print_stdout(&report.to_markdown())
}

/// Writes `text` to stdout (with a final newline); a closed pipe (`| head`) is not an error.
fn print_stdout(text: &str) -> Result<()> {
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
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            path: PathBuf::from("<stdout>"),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Prints the model's diagnostics as warnings on stderr.
pub(crate) fn warn(model: &Mlp) {
    for d in model.diagnostics() {
        note!("warning: {}", escape(d));
    }
}
