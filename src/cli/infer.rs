//! `infer`: a model on an input, whole or a batch at a time, to a file or standard output.

use std::io::Write;

use wgpu_mlp::gpu::{GpuMlpOptions, WeightFormat};
use wgpu_mlp::io;
use wgpu_mlp::model::Module;
use wgpu_mlp::{Error, Mlp, Result, memory};

use crate::cli::args::InferArgs;
use crate::cli::commands;
use crate::cli::device::{self, Choice, DeviceOptions, Runner};
use crate::cli::input::Source;
use crate::cli::model::{self, Given};
use crate::cli::output::{Dest, Select, Writer};

pub(crate) fn infer(args: InferArgs) -> Result<()> {
    // Check everything cheap before doing any work.
    let source = Source::parse(&args.input)?;
    let dest = Dest::parse(&args.output)?;
    let select = Select::new(args.argmax, args.top_k, &dest)?;
    if args.batch_size == Some(0) {
        return Err(Error::InvalidArgument(
            "--batch-size 0: give at least 1 row".into(),
        ));
    }
    if let Dest::File(path, _) = &dest {
        let mut inputs = vec![("the weights", args.weights.as_path())];
        if let Some(p) = source.path() {
            inputs.insert(0, ("the input", p));
        }
        io::check_output(path, &inputs)?;
    }
    let options = DeviceOptions {
        adapter: args.adapter.as_deref(),
        threads: args.threads,
        gpu_only: [
            args.kernel.map(|_| "--kernel"),
            args.weight_format.as_ref().map(|_| "--weight-format"),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    options.check(args.device)?;
    let given = Given::parse(&args.arch)?;
    let names = model::parse_names(args.names.as_deref())?;
    // The files are held while they are parsed: the bytes, and at most twice as many as f32
    // values (f16 weights, or a CSV of one-digit numbers). A streamed input is not held.
    let weights = u128::from(io::check_input(&args.weights)?);
    let input = match (source.path(), args.batch_size) {
        (Some(p), None) => u128::from(io::check_input(p)?),
        _ => 0,
    };
    memory::check(
        3 * (weights + input),
        &format!(
            "infer: reading {} and {} ({} together)",
            args.weights.display(),
            args.input.display(),
            memory::bytes(weights + input)
        ),
        "use smaller files, or --batch-size to read the input a batch at a time",
    )?;
    // Where it runs is decided (and a named adapter or backend that does not exist refused)
    // before the files are read.
    let threads = device::threads(args.threads);
    let choice = device::choose(args.device, args.adapter.clone(), threads)?;
    options.note_unused(&choice);
    let m = model::load(&args.weights, given, names.as_deref())?;
    select.check_width(m.out_features())?;
    let flatten = matches!(m.modules().first(), Some(Module::Flatten));
    let gpu = GpuMlpOptions {
        kernel: args.kernel.unwrap_or_default(),
        weights: match args.weight_format.as_deref() {
            Some("f16") => WeightFormat::F16,
            _ => WeightFormat::F32,
        },
        ..GpuMlpOptions::default()
    };
    let run = Run {
        model: &m,
        choice: &choice,
        threads,
        dest: &dest,
        select,
    };
    match args.batch_size {
        None => {
            let x = source.read(flatten)?;
            m.check_input(x.rows(), x.cols())?;
            run.check_memory(x.rows())?;
            let runner = Runner::new(&choice, &m, threads, gpu)?;
            let y = runner.forward(&x)?;
            drop(x);
            run.write(Some(y.rows()), |w| Ok(w.rows(&y)?))?;
        }
        Some(n) => {
            let mut batches = source.batches(flatten)?;
            // A width the model does not take is refused before a batch is read.
            if let (Some(width), Some(total)) = (batches.width(), batches.total()) {
                m.check_input(total, width)?;
            }
            run.check_memory(n)?;
            let runner = Runner::new(&choice, &m, threads, gpu)?;
            let total = batches.total();
            if total.is_none() && matches!(dest, Dest::File(_, io::MatrixFormat::Npy)) {
                return Err(Error::InvalidArgument(
                    "--batch-size with a CSV input cannot write .npy (its header needs the row \
                     count before the rows are read): write .csv, .json or - (stdout)"
                        .into(),
                ));
            }
            run.write(total, |w| {
                while let Some(x) = batches.next(n).map_err(Stop::Error)? {
                    m.check_input(x.rows(), x.cols()).map_err(Stop::Error)?;
                    if x.rows() == 0 {
                        continue;
                    }
                    let y = runner.forward(&x).map_err(Stop::Error)?;
                    w.rows(&y).map_err(Stop::Io)?;
                }
                Ok(())
            })?;
            batches.finish();
        }
    }
    commands::warn(&m);
    Ok(())
}

/// Why writing stopped early: an error of the run, or of the output.
enum Stop {
    Error(Error),
    Io(std::io::Error),
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Self {
        Stop::Io(e)
    }
}

struct Run<'a> {
    model: &'a Mlp,
    choice: &'a Choice,
    threads: usize,
    dest: &'a Dest,
    select: Select,
}

impl Run<'_> {
    /// The forward pass of `rows` rows at once must fit in memory.
    fn check_memory(&self, rows: usize) -> Result<()> {
        let m = self.model;
        let widths: Vec<usize> = std::iter::once(m.in_features())
            .chain(m.linears().map(|l| l.out_features()))
            .collect();
        // Each thread of the CPU path reserves a stack and a malloc arena: 8 MiB of address
        // space counted per thread (it is what runs out first under `ulimit -v`).
        let thread_bytes = match self.choice {
            Choice::Cpu(..) => self.threads as u128 * (8 << 20),
            _ => 0,
        };
        memory::check(
            memory::forward_bytes(
                &widths,
                m.param_count() as u128,
                rows,
                matches!(self.choice, Choice::Gpu(..)),
            ) + thread_bytes,
            &format!("infer: the forward pass of {rows} rows through layers of widths {widths:?}"),
            if thread_bytes > 0 {
                "give fewer rows at a time (--batch-size), or fewer --threads"
            } else {
                "give fewer rows at a time (--batch-size)"
            },
        )
    }

    /// Runs `body` with a writer on the destination: a file written atomically (nothing is
    /// left behind on an error), or standard output, where a closed pipe ends the run quietly.
    fn write(
        &self,
        total: Option<usize>,
        body: impl FnOnce(&mut Writer) -> std::result::Result<(), Stop>,
    ) -> Result<()> {
        let width = self.model.out_features();
        let mut failure = None;
        let fill = |w: &mut dyn Write| -> std::io::Result<()> {
            let mut writer = Writer::begin(w, self.dest, self.select, width, total)?;
            match body(&mut writer) {
                Ok(()) => writer.end(),
                Err(Stop::Io(e)) => Err(e),
                Err(Stop::Error(e)) => {
                    failure = Some(e);
                    Err(std::io::Error::other("stopped"))
                }
            }
        };
        let written = match self.dest {
            Dest::File(path, _) => io::write_atomic_with(path, fill),
            Dest::Stdout => {
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                match fill(&mut out).and_then(|()| out.flush()) {
                    // `| head`: the reader has what it wanted.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    r => r.map_err(|e| Error::Io {
                        path: "<stdout>".into(),
                        source: e,
                    }),
                }
            }
        };
        match failure {
            Some(e) => Err(e),
            None => written,
        }
    }
}
