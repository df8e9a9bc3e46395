//! The primer's experiments, reproduced: trains MLPs on scikit-learn's 8×8 digits
//! (`data/digits/x.npy`, `y.npy`) and writes `docs/PRIMER.md` with SVG plots under `docs/primer/`,
//! each of the primer's claims next to what was measured.
//!
//! ```sh
//! cargo run --release --example primer                 # the full report into docs/
//! cargo run --example primer -- --quick --out DIR      # a reduced run (CI), into DIR
//! ```
//!
//! Everything runs on the f64 reference (`Backend::CpuReference`) with fixed seeds: the same
//! command writes the same bytes on any machine.

mod report;

use std::path::PathBuf;

use wgpu_mlp::data::{EpochOrder, randperm};
use wgpu_mlp::init::Init;
use wgpu_mlp::model::LayerSpec;
use wgpu_mlp::train::{Backend, EpochReport, Loss, Monitor, Optimizer, Reduction, Target, Trainer};
use wgpu_mlp::{Activation, Generator, Matrix, Mlp, Result};

/// The run's size: full (the report in docs/) or quick (CI).
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub quick: bool,
    /// Epochs of each run.
    pub epochs: usize,
    /// Training rows (of 1347) and test rows (of 450).
    pub train_rows: usize,
    pub test_rows: usize,
}

/// The digits, split once: a fixed permutation (seed 0), the first 1347 rows to train, the
/// other 450 to test (the web page's split sizes).
pub struct Digits {
    pub x: Matrix,
    pub y: Target,
    pub tx: Matrix,
    pub ty: Target,
}

fn digits(size: &Size) -> Result<Digits> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits");
    let pixels = wgpu_mlp::io::read_matrix(format!("{dir}/x.npy"))?;
    let labels = wgpu_mlp::io::labels::read_labels(format!("{dir}/y.npy"))?;
    assert_eq!(
        (pixels.rows(), pixels.cols(), labels.len()),
        (1797, 64, 1797)
    );
    let order = randperm(1797, &mut Generator::new(0));
    let take = |idx: &[usize]| -> Result<(Matrix, Target)> {
        let mut x = Vec::with_capacity(idx.len() * 64);
        for &i in idx {
            x.extend(pixels.row(i).iter().map(|p| p / 16.0));
        }
        let y = idx.iter().map(|&i| labels[i]).collect();
        Ok((Matrix::new(idx.len(), 64, x)?, Target::Classes(y)))
    };
    let (x, y) = take(&order[..size.train_rows])?;
    let (tx, ty) = take(&order[1347..1347 + size.test_rows])?;
    Ok(Digits { x, y, tx, ty })
}

/// One training run's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub hidden: Vec<usize>,
    pub act: Activation,
    /// The weight init of every layer (`None`: PyTorch's default).
    pub init: Option<Init>,
    /// The bias init of every layer (`None`: PyTorch's default).
    pub bias: Option<Init>,
    pub optim: Optimizer,
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Each epoch's gradient health and training loss/accuracy.
    pub epochs: Vec<EpochReport>,
    /// Test accuracy after each epoch.
    pub test_acc: Vec<f64>,
    /// The step at which the loss became NaN or infinite, if it did.
    pub diverged: Option<String>,
    /// The trained model.
    pub model: Option<Mlp>,
}

impl Outcome {
    pub fn final_acc(&self) -> f64 {
        self.test_acc.last().copied().unwrap_or(f64::NAN)
    }

    /// Hidden units identical at the end (any hidden layer).
    pub fn identical(&self) -> bool {
        self.epochs.last().is_some_and(|e| {
            let n = e.layers.len();
            e.layers[..n - 1].iter().any(|l| l.identical)
        })
    }

    /// The fraction of hidden units dead at the last epoch, pooled over the hidden layers.
    pub fn dead(&self) -> Option<f64> {
        let e = self.epochs.last()?;
        let (mut dead, mut units) = (0.0, 0.0);
        for l in &e.layers {
            if let Some(d) = l.dead {
                dead += d * l.units as f64;
                units += l.units as f64;
            }
        }
        (units > 0.0).then(|| dead / units)
    }
}

fn ce() -> Loss {
    Loss::CrossEntropy {
        label_smoothing: 0.0,
    }
}

fn build(c: &Config) -> Result<Mlp> {
    let mut b = Mlp::builder(64);
    let spec = |w: usize, a: Activation| {
        let mut s = LayerSpec::new(w, a);
        if let Some(i) = c.init.clone() {
            s = s.weight_init(i);
        }
        if let Some(i) = c.bias.clone() {
            s = s.bias_init(i);
        }
        s
    };
    for &w in &c.hidden {
        b = b.layer_spec(spec(w, c.act));
    }
    b.layer_spec(spec(10, Activation::Identity)).seed(0).build()
}

/// Trains `c` on the digits for `size.epochs` epochs (batch 32, shuffled with seed 0).
pub fn run(c: &Config, d: &Digits, size: &Size) -> Result<Outcome> {
    let model = build(c)?;
    let mut t = Trainer::new(model, ce(), Reduction::Mean, c.optim, Backend::CpuReference)?;
    let mut m = Monitor::new(t.model(), ce());
    let mut order = EpochOrder::new(d.x.rows(), 32, Some(0), false)?;
    let mut out = empty();
    for _ in 0..size.epochs {
        if let Err(e) = t.epoch_monitored(&d.x, &d.y, &mut order, &mut m, |_, _, _| {}) {
            let msg = e.to_string();
            let step = msg.split("at step ").nth(1).map_or(msg.clone(), |s| {
                s.split(':').next().unwrap_or("").to_string()
            });
            out.diverged = Some(step);
            break;
        }
        out.epochs.push(m.finish_epoch(t.model()));
        let e = wgpu_mlp::train::evaluate(t.model(), ce(), Reduction::Mean, &d.tx, &d.ty, 512)?;
        out.test_acc.push(e.accuracy.unwrap_or(f64::NAN));
    }
    out.model = Some(t.into_model());
    Ok(out)
}

fn sgd(lr: f64, momentum: f64) -> Optimizer {
    Optimizer::Sgd {
        lr,
        momentum,
        dampening: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    }
}

/// The inits compared, with their names.
pub fn inits() -> Vec<(&'static str, Option<Init>, Option<Init>)> {
    vec![
        (
            "zeros (weights and biases)",
            Some(Init::Zeros),
            Some(Init::Zeros),
        ),
        ("zeros (weights only)", Some(Init::Zeros), None),
        (
            "ones (weights and biases)",
            Some(Init::Ones),
            Some(Init::Ones),
        ),
        ("PyTorch default", None, None),
        ("Xavier normal", Some(Init::xavier_normal()), None),
        ("Kaiming normal", Some(Init::kaiming_normal()), None),
    ]
}

/// The hidden activations compared.
pub fn activations() -> Vec<(&'static str, Activation)> {
    vec![
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
        ("ReLU", Activation::Relu),
        ("leaky ReLU", Activation::LeakyRelu(0.01)),
    ]
}

/// Every experiment's results, for the report.
pub struct Results {
    pub size: Size,
    /// (init name, activation name, outcome): 3 hidden layers of 32, SGD 0.05 momentum 0.9.
    pub init: Vec<(String, String, Outcome)>,
    /// (activation name, depth, outcome): `depth` hidden layers of 32, SGD 0.1.
    pub act: Vec<(String, usize, Outcome)>,
    /// (activation name, lr, outcome): 2 hidden layers of 64, SGD at `lr`.
    pub lr: Vec<(String, f64, Outcome)>,
    /// No activation (3 identity hidden layers) and a single Linear layer.
    pub linear: (Outcome, Outcome),
    /// The identity stack collapsed into one Linear layer (product of its weights): the largest
    /// output difference from the stack on the test set, and the share of equal argmaxes.
    pub collapse: (f64, f64),
    /// (activation, init, outcome) at 8 hidden layers of 32, SGD 0.1: the matching init.
    pub deep: Vec<(String, String, Outcome)>,
    /// PyTorch's default init, ReLU, 3 hidden layers of 32, on a small training set.
    pub small: Outcome,
}

pub const DEPTHS: [usize; 3] = [2, 4, 8];
pub const LRS: [f64; 6] = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0];

fn main() -> Result<()> {
    let mut quick = false;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--out" => out = args.next().map(PathBuf::from),
            _ => {
                eprintln!("usage: primer [--quick] [--out DIR]  (default DIR: docs)");
                std::process::exit(2);
            }
        }
    }
    let size = if quick {
        Size {
            quick,
            epochs: 2,
            train_rows: 256,
            test_rows: 128,
        }
    } else {
        Size {
            quick,
            epochs: 20,
            train_rows: 1347,
            test_rows: 450,
        }
    };
    let dir = out.unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")));
    let d = digits(&size)?;
    let mut r = Results {
        size,
        init: Vec::new(),
        act: Vec::new(),
        lr: Vec::new(),
        linear: (empty(), empty()),
        collapse: (f64::NAN, f64::NAN),
        deep: Vec::new(),
        small: empty(),
    };
    for (act_name, act) in [("ReLU", Activation::Relu), ("tanh", Activation::Tanh)] {
        for (name, init, bias) in inits() {
            let c = Config {
                hidden: vec![32; 3],
                act,
                init,
                bias,
                optim: sgd(0.05, 0.9),
            };
            eprintln!("init: {name} / {act_name}");
            r.init
                .push((name.into(), act_name.into(), run(&c, &d, &size)?));
        }
    }
    for (name, act) in activations() {
        for depth in DEPTHS {
            let c = Config {
                hidden: vec![32; depth],
                act,
                init: None,
                bias: None,
                optim: sgd(0.1, 0.0),
            };
            eprintln!("activation: {name} at depth {depth}");
            r.act.push((name.into(), depth, run(&c, &d, &size)?));
        }
    }
    for (name, act) in [
        ("ReLU", Activation::Relu),
        ("leaky ReLU", Activation::LeakyRelu(0.01)),
    ] {
        for lr in LRS {
            let c = Config {
                hidden: vec![64; 2],
                act,
                init: None,
                bias: None,
                optim: sgd(lr, 0.0),
            };
            eprintln!("learning rate: {name} at {lr}");
            r.lr.push((name.into(), lr, run(&c, &d, &size)?));
        }
    }
    let identity = Config {
        hidden: vec![32; 3],
        act: Activation::Identity,
        init: None,
        bias: None,
        optim: sgd(0.05, 0.9),
    };
    let single = Config {
        hidden: vec![],
        ..identity.clone()
    };
    eprintln!("no activation");
    r.linear = (run(&identity, &d, &size)?, run(&single, &d, &size)?);
    if let Some(m) = &r.linear.0.model {
        r.collapse = collapse(m, &d.tx)?;
    }
    for (act_name, act, init_name, init) in [
        (
            "ReLU",
            Activation::Relu,
            "Kaiming normal",
            Init::kaiming_normal(),
        ),
        (
            "tanh",
            Activation::Tanh,
            "Xavier normal",
            Init::xavier_normal(),
        ),
    ] {
        let c = Config {
            hidden: vec![32; 8],
            act,
            init: Some(init),
            bias: None,
            optim: sgd(0.1, 0.0),
        };
        eprintln!("deep: {act_name} with {init_name}");
        r.deep
            .push((act_name.into(), init_name.into(), run(&c, &d, &size)?));
    }
    let rows = if size.quick { 64 } else { 100 };
    let few = Digits {
        x: d.x.slice_rows(0, rows)?,
        y: d.y.select(&(0..rows).collect::<Vec<_>>())?,
        tx: d.tx.clone(),
        ty: d.ty.clone(),
    };
    let long = Size {
        epochs: size.epochs * 3,
        train_rows: rows,
        ..size
    };
    let c = Config {
        hidden: vec![32; 3],
        act: Activation::Relu,
        init: None,
        bias: None,
        optim: sgd(0.05, 0.9),
    };
    eprintln!("small data: {rows} rows");
    r.small = run(&c, &few, &long)?;
    report::write(&r, &dir)
}

fn empty() -> Outcome {
    Outcome {
        epochs: Vec::new(),
        test_acc: Vec::new(),
        diverged: None,
        model: None,
    }
}

/// Multiplies out a stack of Linear layers with no activation into one `W·x + b` (in f64) and
/// compares it with the stack's reference forward on `x`: (largest |difference|, share of
/// rows with the same argmax).
fn collapse(m: &Mlp, x: &Matrix) -> Result<(f64, f64)> {
    let n = m.in_features();
    let mut w: Vec<f64> = (0..n * n)
        .map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let mut b = vec![0.0f64; n];
    let mut rows = n;
    for l in m.linears() {
        let (o, k) = (l.out_features(), l.in_features());
        assert_eq!(k, rows);
        let lw = l.weight();
        let mut nw = vec![0.0; o * n];
        let mut nb = vec![0.0; o];
        for r in 0..o {
            for j in 0..k {
                let v = f64::from(lw[r * k + j]);
                nb[r] += v * b[j];
                for c in 0..n {
                    nw[r * n + c] += v * w[j * n + c];
                }
            }
            nb[r] += l.bias().map_or(0.0, |bb| f64::from(bb[r]));
        }
        (w, b, rows) = (nw, nb, o);
    }
    let stack = wgpu_mlp::cpu::forward(m, x)?;
    let (mut diff, mut same) = (0.0f64, 0usize);
    for i in 0..x.rows() {
        let xi = x.row(i);
        let out: Vec<f64> = (0..rows)
            .map(|r| b[r] + (0..n).map(|c| w[r * n + c] * f64::from(xi[c])).sum::<f64>())
            .collect();
        let s = stack.row(i);
        for (a, z) in out.iter().zip(s) {
            diff = diff.max((a - f64::from(*z)).abs());
        }
        let am = |v: &[f64]| (0..v.len()).fold(0, |best, j| if v[j] > v[best] { j } else { best });
        let sv: Vec<f64> = s.iter().map(|v| f64::from(*v)).collect();
        same += usize::from(am(&out) == am(&sv));
    }
    Ok((diff, same as f64 / x.rows() as f64))
}
