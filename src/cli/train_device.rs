//! Where `wgpu-mlp train` trains, and saying so. `--device auto` follows `infer`'s rule (a
//! hardware GPU when there is one or `--adapter` names one; software adapters, slower than
//! the CPU path on the same cores, only when asked for), and takes the CPU when the GPU does
//! not train one of the model's modules yet.

use wgpu_mlp::train::{Backend, Loss, Optimizer, Reduction, Trainer};
use wgpu_mlp::{Mlp, Result, escape};

use crate::cli::args::{Device, TrainArgs};
use crate::cli::device::{self, Choice};

/// The trainer `args` ask for (the choice printed on stderr).
pub(crate) fn trainer(
    args: &TrainArgs,
    model: Mlp,
    loss: Loss,
    reduction: Reduction,
    optimizer: Optimizer,
) -> Result<Trainer> {
    let cpu = |model: Mlp, why: &str| {
        note!("training on the CPU{why}");
        Trainer::new(model, loss, reduction, optimizer, Backend::Cpu)
    };
    match args.device {
        Device::Cpu => Trainer::new(model, loss, reduction, optimizer, Backend::Cpu),
        Device::CpuReference => {
            Trainer::new(model, loss, reduction, optimizer, Backend::CpuReference)
        }
        Device::Gpu | Device::Auto => {
            let threads = device::threads(None);
            match device::choose(args.device, args.adapter.clone(), threads)? {
                Choice::Gpu(ctx, line) => {
                    match Trainer::on_gpu(model.clone(), loss, reduction, optimizer, &ctx) {
                        Ok(t) => {
                            note!("{}", escape(&line.replacen("running", "training", 1)));
                            Ok(t)
                        }
                        // auto: what the GPU does not train yet trains on the CPU.
                        Err(e) if args.device == Device::Auto => {
                            let e = e.to_string();
                            let why = e.split(": use").next().unwrap_or(&e);
                            cpu(
                                model,
                                &format!(
                                    " ({})",
                                    escape(why.trim_start_matches("invalid argument: "))
                                ),
                            )
                        }
                        Err(e) => Err(e),
                    }
                }
                Choice::Cpu(line) => {
                    let why = line.split_once(')').map_or("", |(_, w)| w);
                    cpu(model, why)
                }
                Choice::Reference => {
                    Trainer::new(model, loss, reduction, optimizer, Backend::CpuReference)
                }
            }
        }
    }
}
