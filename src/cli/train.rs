//! `wgpu-mlp train`: trains a model (a state_dict, or new from --layers) on an input matrix and
//! its targets, as PyTorch's loop with `DataLoader(TensorDataset(x, y), batch_size, shuffle,
//! generator=manual_seed(S), drop_last)` does, and writes the trained state_dict. Everything is
//! checked before the first step; nothing is written unless every step succeeds.

use std::path::Path;

use wgpu_mlp::data::EpochOrder;
use wgpu_mlp::io::{self, MatrixFormat};
use wgpu_mlp::train::{Loss, Optimizer, Reduction, Target, state_dict_bytes};
use wgpu_mlp::{DEFAULT_SEED, Error, Matrix, Mlp, Result, escape, memory};

use crate::cli::args::TrainArgs;
use crate::cli::model::{self, Given};
use crate::cli::train_device;
use crate::cli::train_run::{self, Data};

pub(crate) fn train(args: TrainArgs) -> Result<()> {
    let loss = parse_loss(&args.loss)?;
    let reduction: Reduction = args.reduction.parse()?;
    let optimizer = optimizer(&args)?;
    if args.epochs == 0 {
        return Err(Error::InvalidArgument("--epochs must be at least 1".into()));
    }
    if args.batch_size == 0 {
        return Err(Error::InvalidArgument(
            "--batch-size must be at least 1".into(),
        ));
    }
    MatrixFormat::from_path(&args.input)?;
    MatrixFormat::from_path(&args.target)?;
    let mut inputs: Vec<(&str, &Path)> = vec![
        ("the input", args.input.as_path()),
        ("the target", args.target.as_path()),
    ];
    if let Some(w) = &args.source.weights {
        inputs.push(("the weights", w.as_path()));
    }
    if let Some(v) = &args.tool.val_input {
        MatrixFormat::from_path(v)?;
        inputs.push(("the validation input", v.as_path()));
    }
    if let Some(v) = &args.tool.val_target {
        MatrixFormat::from_path(v)?;
        inputs.push(("the validation target", v.as_path()));
    }
    if let Some(r) = &args.tool.resume {
        inputs.push(("the checkpoint to resume", r.as_path()));
    }
    check_outputs(&args, &inputs)?;
    // The files are held while they are parsed, and the data set again as batches and
    // activations: four times the files, as a floor.
    let mut files = 0u128;
    for (_, path) in &inputs {
        files += u128::from(io::check_input(path)?);
    }
    memory::check(
        4 * files,
        &format!(
            "train: reading the model and data ({})",
            memory::bytes(files)
        ),
        "use smaller files",
    )?;
    let given = Given::parse(&args.arch)?;
    let (model, names) = load_model(&args, given)?;
    let x = io::read_matrix(&args.input)?;
    model.check_input(x.rows(), x.cols())?;
    let y = read_target(&args.target, loss, &model, x.rows())?;
    check_finite(&x, "the input", &args.input)?;
    if let Target::Values(m) = &y {
        check_finite(m, "the target", &args.target)?;
    }
    let data = validation_data(&args, loss, &model, x, y)?;
    let x = &data.x;
    let order = EpochOrder::new(x.rows(), args.batch_size, args.shuffle_seed, args.drop_last)?;
    if order.batches_per_epoch() == 0 {
        return Err(Error::InvalidArgument(format!(
            "--batch-size {} with --drop-last leaves no batch: the data set has {} rows",
            args.batch_size,
            x.rows()
        )));
    }
    let trainer = train_device::trainer(&args, model, loss, reduction, optimizer)?;
    train_run::run(&args, trainer, &data, order, &names, loss)
}

/// `mse`, `smooth_l1:0.5`, `cross_entropy:0.1`, …
fn parse_loss(s: &str) -> Result<Loss> {
    let (name, param) = match s.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (s, None),
    };
    let num = |default: f64| -> Result<f64> {
        param.map_or(Ok(default), |p| {
            p.trim().parse::<f64>().map_err(|_| {
                Error::InvalidArgument(format!(
                    "--loss {}: '{}' is not a number",
                    escape(s),
                    escape(p)
                ))
            })
        })
    };
    let no_param = |l: Loss| match param {
        Some(_) => Err(Error::InvalidArgument(format!(
            "--loss {name} takes no parameter"
        ))),
        None => Ok(l),
    };
    let loss = match name {
        "mse" => no_param(Loss::Mse)?,
        "l1" => no_param(Loss::L1)?,
        "smooth_l1" => Loss::SmoothL1 { beta: num(1.0)? },
        "huber" => Loss::Huber { delta: num(1.0)? },
        "cross_entropy" => Loss::CrossEntropy {
            label_smoothing: num(0.0)?,
        },
        "nll" => no_param(Loss::Nll)?,
        "bce" => no_param(Loss::Bce)?,
        "bce_with_logits" => no_param(Loss::BceWithLogits)?,
        _ => {
            return Err(Error::InvalidArgument(format!(
                "unknown --loss '{}': use mse, l1, smooth_l1[:beta], huber[:delta], \
                 cross_entropy[:label_smoothing], nll, bce or bce_with_logits",
                escape(s)
            )));
        }
    };
    loss.check()?;
    Ok(loss)
}

/// The optimizer of `--optim` with its flags; a flag of the other optimizer is an error.
fn optimizer(a: &TrainArgs) -> Result<Optimizer> {
    let refuse = |flag: &str, set: bool| {
        if set {
            Err(Error::InvalidArgument(format!(
                "{flag} does not apply to --optim {}",
                a.optim
            )))
        } else {
            Ok(())
        }
    };
    let o = if a.optim == "sgd" {
        refuse("--betas", a.betas.is_some())?;
        refuse("--eps", a.eps.is_some())?;
        refuse("--amsgrad", a.amsgrad)?;
        Optimizer::Sgd {
            lr: a.lr,
            momentum: a.momentum.unwrap_or(0.0),
            dampening: a.dampening.unwrap_or(0.0),
            nesterov: a.nesterov,
            weight_decay: a.weight_decay.unwrap_or(0.0),
        }
    } else {
        refuse("--momentum", a.momentum.is_some())?;
        refuse("--dampening", a.dampening.is_some())?;
        refuse("--nesterov", a.nesterov)?;
        let decoupled = a.optim == "adamw";
        Optimizer::Adam {
            lr: a.lr,
            betas: parse_betas(a.betas.as_deref())?,
            eps: a.eps.unwrap_or(1e-8),
            weight_decay: a.weight_decay.unwrap_or(if decoupled { 0.01 } else { 0.0 }),
            amsgrad: a.amsgrad,
            decoupled,
        }
    };
    o.check().map_err(|e| {
        Error::InvalidArgument(format!(
            "--optim {}: {}",
            a.optim,
            e.to_string().trim_start_matches("invalid argument: ")
        ))
    })?;
    Ok(o)
}

fn parse_betas(s: Option<&str>) -> Result<(f64, f64)> {
    let Some(s) = s else { return Ok((0.9, 0.999)) };
    let v: Vec<Option<f64>> = s.split(',').map(|b| b.trim().parse().ok()).collect();
    match v.as_slice() {
        [Some(b1), Some(b2)] => Ok((*b1, *b2)),
        _ => Err(Error::InvalidArgument(format!(
            "--betas '{}': give two numbers B1,B2, e.g. 0.9,0.999",
            escape(s)
        ))),
    }
}

/// The model and the module name of each module that owns tensors (the file's own names, so
/// the output keeps them).
fn load_model(args: &TrainArgs, given: Given) -> Result<(Mlp, Vec<String>)> {
    match (&args.source.layers, &args.source.weights) {
        (Some(layers), _) => {
            let widths = model::parse_widths(layers)?;
            let m = model::build(&widths, given, args.seed.unwrap_or(DEFAULT_SEED))?;
            let names = sequential_names(&m)?;
            Ok((m, names))
        }
        (None, Some(path)) => {
            let given_names = model::parse_names(args.names.as_deref())?;
            let mut m = model::load(path, given, given_names.as_deref())?;
            let names = file_names(path, given_names.as_deref(), &m)?;
            restore_counts(path, &names, &mut m)?;
            Ok((m, names))
        }
        (None, None) => Err(Error::InvalidArgument("give --layers or --weights".into())),
    }
}

/// The `nn.Sequential` index names of a new model's modules with tensors.
fn sequential_names(m: &Mlp) -> Result<Vec<String>> {
    let bytes = state_dict_bytes(m, None)?;
    let (_, names) = io::safetensors::metadata(&bytes, "the new model")?;
    names.ok_or_else(|| Error::InvalidArgument("no module names".into()))
}

/// The module-name prefixes of the file's keys, matched to the model's modules with tensors:
/// by `--names` / the file's own names when given, else in natural order (as the loader binds
/// them). ONNX files have no state_dict names: their modules take sequential indices.
fn file_names(path: &Path, given: Option<&[String]>, m: &Mlp) -> Result<Vec<String>> {
    if wgpu_mlp::onnx::is_onnx_path(path) {
        return sequential_names(m);
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let source = path.display().to_string();
    let n = u64::from_le_bytes(
        bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 8]),
    );
    let header: serde_json::Map<String, serde_json::Value> = bytes
        .get(8..8 + n as usize)
        .and_then(|h| serde_json::from_slice(h).ok())
        .ok_or_else(|| Error::Format {
            path: source.clone(),
            msg: "unreadable safetensors header".into(),
        })?;
    let mut prefixes: Vec<String> = header
        .keys()
        .filter(|k| *k != "__metadata__")
        .filter_map(|k| k.rsplit_once('.').map(|(p, _)| p.to_string()))
        .collect();
    prefixes.sort_by(|a, b| wgpu_mlp::model::natural_cmp(a, b));
    prefixes.dedup();
    let (_, own) = io::safetensors::metadata(&bytes, &source)?;
    let order: Vec<String> = match given.map(<[String]>::to_vec).or(own) {
        Some(names) => names
            .iter()
            .filter(|n| *n != "-")
            .map(|n| {
                prefixes
                    .iter()
                    .find(|p| *p == n || p.ends_with(&format!(".{n}")))
                    .cloned()
                    .unwrap_or_else(|| n.clone())
            })
            .collect(),
        None => prefixes,
    };
    let owners = m
        .tensors()
        .iter()
        .map(|t| t.module)
        .fold(Vec::new(), |mut v, i| {
            if v.last() != Some(&i) {
                v.push(i);
            }
            v
        });
    if order.len() == owners.len() {
        Ok(order)
    } else {
        note!(
            "note: {}: its module names do not map one to one onto the model's modules; the \
             output names them by nn.Sequential index",
            escape(&source)
        );
        sequential_names(m)
    }
}

/// BatchNorm's `num_batches_tracked` from the file (an I64 scalar the model loader skips), so
/// that a resumed run counts on from it as PyTorch's does.
fn restore_counts(path: &Path, names: &[String], m: &mut Mlp) -> Result<()> {
    if wgpu_mlp::onnx::is_onnx_path(path) {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let n = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes) as usize;
    let Some(header) = bytes
        .get(8..8 + n)
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(h).ok())
    else {
        return Ok(());
    };
    let data = &bytes[8 + n..];
    let owners = m
        .tensors()
        .iter()
        .map(|t| t.module)
        .fold(Vec::new(), |mut v, i| {
            if v.last() != Some(&i) {
                v.push(i);
            }
            v
        });
    for (name, &module) in names.iter().zip(&owners) {
        let t = &header[format!("{name}.num_batches_tracked")];
        let range = t["data_offsets"]
            .as_array()
            .and_then(|o| Some((o.first()?.as_u64()? as usize, o.get(1)?.as_u64()? as usize)));
        if let (Some("I64"), Some((a, b))) = (t["dtype"].as_str(), range)
            && let Some(raw) = data.get(a..b).and_then(|r| <[u8; 8]>::try_from(r).ok())
        {
            m.set_num_batches_tracked(module, i64::from_le_bytes(raw))?;
        }
    }
    Ok(())
}

/// The targets, as the loss wants them, checked against the input's rows and the model.
fn read_target(path: &Path, loss: Loss, m: &Mlp, rows: usize) -> Result<Target> {
    let shown = escape(&path.display().to_string()).into_owned();
    if loss.wants_classes() {
        let c = io::labels::read_labels(path)?;
        if c.len() != rows {
            return Err(Error::InvalidArgument(format!(
                "{shown}: {} class targets for {rows} input rows",
                c.len()
            )));
        }
        let k = m.out_features() as i64;
        if let Some((i, v)) = c.iter().enumerate().find(|(_, v)| **v < 0 || **v >= k) {
            return Err(Error::InvalidArgument(format!(
                "{shown}: class target {v} at row {i} is out of range: the model has {k} \
                 outputs (classes 0 to {})",
                k - 1
            )));
        }
        return Ok(Target::Classes(c));
    }
    let y = io::read_matrix(path)?;
    if y.rows() != rows || y.cols() != m.out_features() {
        return Err(Error::InvalidArgument(format!(
            "{shown} is [{}, {}] but {loss} needs [{rows}, {}] (the input's rows, the model's \
             outputs)",
            y.rows(),
            y.cols(),
            m.out_features()
        )));
    }
    Ok(Target::Values(y))
}

fn check_finite(m: &Matrix, what: &str, path: &Path) -> Result<()> {
    if let Some(i) = m.as_slice().iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "{what} {} has {} at row {}, column {}: training on it would make the loss NaN",
            escape(&path.display().to_string()),
            m.as_slice()[i],
            i / m.cols(),
            i % m.cols()
        )));
    }
    Ok(())
}

/// The output files (the model, --log, --plot, the checkpoint): each checked as `infer`
/// checks its output, none naming an input or another output.
fn check_outputs(args: &TrainArgs, inputs: &[(&str, &Path)]) -> Result<()> {
    let ckpt = train_run::checkpoint_path(args);
    let mut outs: Vec<(&str, &Path)> = vec![("--output", args.output.as_path())];
    if let Some(p) = &args.log {
        outs.push(("--log", p.as_path()));
    }
    if let Some(p) = &args.tool.plot {
        outs.push(("--plot", p.as_path()));
    }
    if let Some(p) = &ckpt {
        outs.push(("--checkpoint", p.as_path()));
    }
    for (i, (flag, path)) in outs.iter().enumerate() {
        // The checkpoint may be the one resumed from: it is read whole before it is rewritten.
        let ins: Vec<(&str, &Path)> = inputs
            .iter()
            .filter(|(_, p)| !(*flag == "--checkpoint" && args.tool.resume.as_deref() == Some(*p)))
            .copied()
            .collect();
        io::check_output(path, &ins)?;
        for (other, q) in &outs[..i] {
            if io::same_file(path, q) || path == q {
                return Err(Error::InvalidArgument(format!(
                    "{flag} and {other} name the same file"
                )));
            }
        }
    }
    Ok(())
}

/// The training data and the validation data (--val-input/--val-target or --val-split).
fn validation_data(args: &TrainArgs, loss: Loss, m: &Mlp, x: Matrix, y: Target) -> Result<Data> {
    if let Some(f) = args.tool.val_split {
        return train_run::split(x, y, f);
    }
    let val = match (&args.tool.val_input, &args.tool.val_target) {
        (Some(vi), Some(vt)) => {
            let vx = io::read_matrix(vi)?;
            m.check_input(vx.rows(), vx.cols())?;
            check_finite(&vx, "the validation input", vi)?;
            let vy = read_target(vt, loss, m, vx.rows())?;
            if let Target::Values(t) = &vy {
                check_finite(t, "the validation target", vt)?;
            }
            Some((vx, vy))
        }
        _ => None,
    };
    Ok(Data { x, y, val })
}
