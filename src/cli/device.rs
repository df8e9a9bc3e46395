//! Where `infer` runs, and saying so: a hardware GPU when there is one, else the fast CPU path;
//! software adapters (lavapipe, llvmpipe: a GPU driver running on the same CPU cores, slower than
//! the CPU path) only when asked for.

use wgpu_mlp::cpu::CpuMlp;
use wgpu_mlp::gpu::{AdapterSummary, GpuContext, GpuMlp, GpuMlpOptions, GpuOptions, list_adapters};
use wgpu_mlp::{Error, Matrix, Mlp, Result, escape};

use crate::cli::args::Device;

/// Where the forward pass will run, and why (the line printed on stderr).
pub(crate) enum Choice {
    Gpu(GpuContext, String),
    Cpu(String),
    Reference,
}

/// Decides where `device` runs, opening the GPU if that is the choice.
pub(crate) fn choose(device: Device, adapter: Option<String>, threads: usize) -> Result<Choice> {
    // A name in WGPU_ADAPTER_NAME is a request too: a run that silently went to the CPU when
    // that adapter does not exist would look like a run on it.
    let from_env = std::env::var("WGPU_ADAPTER_NAME")
        .ok()
        .filter(|s| !s.is_empty());
    let named = match (&adapter, &from_env) {
        (Some(_), _) => Some(": the adapter --adapter names"),
        (None, Some(_)) => Some(": the adapter WGPU_ADAPTER_NAME names"),
        (None, None) => None,
    };
    let options = GpuOptions {
        adapter_name: adapter.clone(),
        ..GpuOptions::default()
    };
    let on_gpu = |why: &str| -> Result<Choice> {
        let ctx = GpuContext::new(&options)?;
        let line = format!("running on {}{why}", describe(&ctx.adapter()));
        Ok(Choice::Gpu(ctx, line))
    };
    let on_cpu = |why: &str| Choice::Cpu(format!("running on the CPU ({threads} threads){why}"));
    match device {
        Device::Gpu => on_gpu(""),
        Device::Cpu => Ok(on_cpu("")),
        Device::CpuReference => Ok(Choice::Reference),
        // A named adapter is a request for it, software or not.
        Device::Auto if named.is_some() => on_gpu(named.unwrap_or_default()),
        Device::Auto => {
            let found = list_adapters(None)?;
            if found.iter().any(|a| a.device_type != "Cpu") {
                return on_gpu(": a hardware GPU");
            }
            let why = if found.is_empty() {
                ": no GPU adapter found".to_string()
            } else {
                let names: Vec<String> = found.iter().map(describe).collect();
                format!(
                    ": no hardware GPU, only software adapters ({}), which run slower than the \
                     CPU path on the same cores; --device gpu runs on them",
                    names.join(", ")
                )
            };
            Ok(on_cpu(&why))
        }
    }
}

/// A model ready to run where the choice says, batch after batch.
pub(crate) enum Runner<'a> {
    Gpu(Box<GpuMlp>),
    Cpu(Box<CpuMlp>),
    Reference(&'a Mlp),
}

impl<'a> Runner<'a> {
    /// Prepares `model` where `choice` says (printing the choice on stderr), with the GPU's
    /// `options`.
    pub(crate) fn new(
        choice: &Choice,
        model: &'a Mlp,
        threads: usize,
        options: GpuMlpOptions,
    ) -> Result<Self> {
        Ok(match choice {
            Choice::Gpu(ctx, line) => {
                note!("{}", escape(line));
                Runner::Gpu(Box::new(GpuMlp::with_options(ctx, model, options)?))
            }
            Choice::Cpu(line) => {
                note!("{}", escape(line));
                Runner::Cpu(Box::new(CpuMlp::with_threads(model, threads)?))
            }
            Choice::Reference => {
                note!(
                    "running the CPU reference (f64 within each operation: for checking, not \
                     speed)"
                );
                Runner::Reference(model)
            }
        })
    }

    pub(crate) fn forward(&self, input: &Matrix) -> Result<Matrix> {
        match self {
            Runner::Gpu(g) => g.forward(input),
            Runner::Cpu(c) => c.forward(input),
            Runner::Reference(m) => wgpu_mlp::cpu::forward(m, input),
        }
    }
}

/// Options that only one kind of device uses, as given.
pub(crate) struct DeviceOptions<'a> {
    pub(crate) adapter: Option<&'a str>,
    pub(crate) threads: Option<usize>,
    /// The GPU-only options given (`--kernel`, `--weight-format`).
    pub(crate) gpu_only: Vec<&'static str>,
}

impl DeviceOptions<'_> {
    /// An option that cannot apply to the `device` asked for is an error, never dropped
    /// silently.
    pub(crate) fn check(&self, device: Device) -> Result<()> {
        let refuse = |option: &str, what: &str, device: &str| {
            Err(Error::InvalidArgument(format!(
                "{option} {what}, and --device {device} does not use it: drop one of the two"
            )))
        };
        let cpu = match device {
            Device::Cpu => Some("cpu"),
            Device::CpuReference => Some("cpu-reference"),
            _ => None,
        };
        if let Some(d) = cpu {
            if self.adapter.is_some() {
                return refuse("--adapter", "picks a GPU adapter", d);
            }
            if let Some(o) = self.gpu_only.first() {
                return refuse(o, "applies to the GPU", d);
            }
        }
        if self.threads.is_some() {
            match device {
                Device::Gpu => return refuse("--threads", "sets the CPU path's threads", "gpu"),
                Device::CpuReference => {
                    return refuse(
                        "--threads",
                        "sets the fast CPU path's threads (the reference runs on one)",
                        "cpu-reference",
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// With `--device auto`, once it is decided: a note for each option the choice leaves
    /// unused.
    pub(crate) fn note_unused(&self, choice: &Choice) {
        match choice {
            Choice::Gpu(..) if self.threads.is_some() => {
                note!("note: --threads is ignored: the forward pass runs on the GPU");
            }
            Choice::Cpu(..) => {
                for o in &self.gpu_only {
                    note!("note: {o} is ignored: the forward pass runs on the CPU");
                }
            }
            _ => {}
        }
    }
}

/// `name (backend, type)`.
fn describe(a: &AdapterSummary) -> String {
    let name = if a.name.is_empty() {
        "an unnamed adapter"
    } else {
        &a.name
    };
    format!("{name} ({}, {})", a.backend, a.device_type)
}

/// The threads of the CPU path: the option, else one per core.
pub(crate) fn threads(option: Option<usize>) -> usize {
    option
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
