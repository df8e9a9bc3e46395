//! The primer report: `PRIMER.md` and its SVG figures, from the measured [`Results`]. Every
//! verdict is computed from the numbers by the rule written next to it.

use std::fmt::Write as _;
use std::path::Path;

use wgpu_mlp::chart::{Chart, Series, svg};
use wgpu_mlp::{Error, Result};

use crate::{DEPTHS, LRS, Outcome, Results};

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", 100.0 * v)
    } else {
        "–".into()
    }
}

fn sci(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2e}")
    } else {
        "–".into()
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn find<'a>(v: &'a [(String, String, Outcome)], init: &str, act: &str) -> &'a Outcome {
    &v.iter()
        .find(|(i, a, _)| i == init && a == act)
        .expect("run")
        .2
}

fn act_at<'a>(r: &'a Results, act: &str, depth: usize) -> &'a Outcome {
    &r.act
        .iter()
        .find(|(a, d, _)| a == act && *d == depth)
        .expect("run")
        .2
}

fn lr_at<'a>(r: &'a Results, act: &str, lr: f64) -> &'a Outcome {
    &r.lr
        .iter()
        .find(|(a, l, _)| a == act && *l == lr)
        .expect("run")
        .2
}

/// The first layer's mean |gradient| in epoch 1, and its ratio to the last layer's.
fn first_grad(o: &Outcome) -> (f64, f64) {
    let Some(e) = o.epochs.first() else {
        return (f64::NAN, f64::NAN);
    };
    let (f, l) = (e.layers[0].grad, e.layers[e.layers.len() - 1].grad);
    (f, f / l)
}

fn last_loss(o: &Outcome) -> f64 {
    o.epochs.last().map_or(f64::NAN, |e| e.train.loss)
}

fn train_acc(o: &Outcome) -> f64 {
    o.epochs
        .last()
        .and_then(|e| e.train.accuracy)
        .unwrap_or(f64::NAN)
}

fn verdict(ok: bool) -> &'static str {
    verdict2(ok, ok)
}

/// Agrees when every part of the claim holds, partly when some does.
fn verdict2(all: bool, some: bool) -> &'static str {
    match (all, some) {
        (true, _) => "**agrees**",
        (false, true) => "**partly**",
        (false, false) => "**does not agree**",
    }
}

fn deep<'a>(r: &'a Results, act: &str) -> &'a Outcome {
    &r.deep.iter().find(|(a, _, _)| a == act).expect("run").2
}

/// Writes `dir/PRIMER.md` and `dir/primer/*.svg`.
pub fn write(r: &Results, dir: &Path) -> Result<()> {
    let figs = dir.join("primer");
    std::fs::create_dir_all(&figs).map_err(|source| Error::Io {
        path: figs.clone(),
        source,
    })?;
    let put = |name: &str, text: &str| -> Result<()> {
        let p = figs.join(name);
        wgpu_mlp::io::write_atomic(&p, text.as_bytes())
    };
    let epochs_x = |v: &[f64]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(i, a)| ((i + 1) as f64, 100.0 * a))
            .collect()
    };
    // Figures.
    let mut charts = Vec::new();
    for act in ["ReLU", "tanh"] {
        let mut c = Chart::new(
            &format!("init, {act} hidden layers"),
            "epoch",
            "test accuracy (%)",
        );
        for (init, a, o) in &r.init {
            if a == act {
                c = c.series(Series::new(init.clone(), epochs_x(&o.test_acc)));
            }
        }
        charts.push(c);
    }
    put("init.svg", &svg(&charts))?;
    let mut loss = Chart::new("training loss, 4 hidden layers", "epoch", "loss").log_y();
    let mut grad = Chart::new(
        "first layer mean |grad|, epoch 1",
        "hidden layers",
        "mean |grad|",
    )
    .log_y();
    for (name, _) in crate::activations() {
        let o = act_at(r, name, 4);
        let pts = o
            .epochs
            .iter()
            .enumerate()
            .map(|(i, e)| ((i + 1) as f64, e.train.loss))
            .collect();
        loss = loss.series(Series::new(name, pts));
        let g = DEPTHS
            .iter()
            .map(|&d| (d as f64, first_grad(act_at(r, name, d)).0))
            .collect();
        grad = grad.series(Series::new(name, g));
    }
    put("activations.svg", &svg(&[loss, grad]))?;
    let mut dead = Chart::new(
        "units never active, last epoch",
        "log10 learning rate",
        "dead (%)",
    );
    let mut acc = Chart::new("test accuracy", "log10 learning rate", "accuracy (%)");
    for name in ["ReLU", "leaky ReLU"] {
        let d = LRS
            .iter()
            .filter_map(|&lr| lr_at(r, name, lr).dead().map(|v| (lr.log10(), 100.0 * v)))
            .collect();
        let a = LRS
            .iter()
            .map(|&lr| (lr.log10(), 100.0 * lr_at(r, name, lr).final_acc()))
            .collect();
        dead = dead.series(Series::new(name, d));
        acc = acc.series(Series::new(name, a));
    }
    put("dead_relu.svg", &svg(&[dead, acc]))?;

    // Measurements for the claims.
    let best = |act: &str| {
        r.init
            .iter()
            .filter(|(_, a, _)| a == act)
            .map(|(_, _, o)| o.final_acc())
            .fold(0.0, f64::max)
    };
    let (relu_best, tanh_best) = (best("ReLU"), best("tanh"));
    let z = |a| find(&r.init, "zeros (weights and biases)", a);
    let zw = |a| find(&r.init, "zeros (weights only)", a);
    let ones = |a| find(&r.init, "ones (weights and biases)", a);
    let def = |a| find(&r.init, "PyTorch default", a);
    let kai = find(&r.init, "Kaiming normal", "ReLU");
    let xav = find(&r.init, "Xavier normal", "tanh");
    let ratio8 = |a| first_grad(act_at(r, a, 8)).1;
    let (sig8, tanh8, relu8, leaky8) = (
        ratio8("sigmoid"),
        ratio8("tanh"),
        ratio8("ReLU"),
        ratio8("leaky ReLU"),
    );
    let losses = |a| {
        DEPTHS
            .iter()
            .map(|&d| format!("{:.3}", last_loss(act_at(r, a, d))))
            .collect::<Vec<_>>()
            .join("/")
    };
    let tanh_faster = DEPTHS
        .iter()
        .all(|&d| last_loss(act_at(r, "tanh", d)) < last_loss(act_at(r, "sigmoid", d)));
    let live: Vec<(f64, f64)> = LRS
        .iter()
        .filter_map(|&lr| {
            let o = lr_at(r, "ReLU", lr);
            o.diverged
                .is_none()
                .then(|| (lr, o.dead().unwrap_or(f64::NAN)))
        })
        .collect();
    let (lo, hi) = (live.first().copied(), live.last().copied());
    let worst = live
        .iter()
        .copied()
        .fold((f64::NAN, -1.0), |b, x| if x.1 > b.1 { x } else { b });
    let (lin, single) = (&r.linear.0, &r.linear.1);
    let gap = train_acc(def("ReLU")) - def("ReLU").final_acc();
    let (kdeep, xdeep) = (deep(r, "ReLU"), deep(r, "tanh"));
    let (rdef8, tdef8) = (act_at(r, "ReLU", 8), act_at(r, "tanh", 8));
    let sig8acc = act_at(r, "sigmoid", 8).final_acc();
    let small_gap = train_acc(&r.small) - r.small.final_acc();
    let small_rows = r.small.epochs.first().map_or(0, |e| e.train.rows);
    let k3 = kai.final_acc() >= relu_best - 0.01;
    let k8 = kdeep.final_acc() > rdef8.final_acc();
    let x3 = xav.final_acc() >= tanh_best - 0.01;
    let x8 = xdeep.final_acc() > tdef8.final_acc();
    let relu_grad = relu8 > 10.0 * sig8;
    let relu_acc = rdef8.final_acc().max(kdeep.final_acc()) > sig8acc + 0.1;

    let mut claims: Vec<[String; 4]> = Vec::new();
    let mut claim = |c: &str, m: String, v: &str, rule: &str| {
        claims.push([c.into(), m, v.into(), rule.into()]);
    };
    claim(
        "全零初始化 → 导致神经元对称失效,禁止使用 (all-zero init makes neurons symmetric: never use it)",
        format!(
            "all zeros: hidden units identical after {} epochs: {} (ReLU), {} (tanh); test accuracy {} / {} against {} / {} for PyTorch's default. Zero weights with PyTorch's random biases: identical {} / {}, accuracy {} / {}",
            r.size.epochs,
            yes(z("ReLU").identical()),
            yes(z("tanh").identical()),
            pct(z("ReLU").final_acc()),
            pct(z("tanh").final_acc()),
            pct(def("ReLU").final_acc()),
            pct(def("tanh").final_acc()),
            yes(zw("ReLU").identical()),
            yes(zw("tanh").identical()),
            pct(zw("ReLU").final_acc()),
            pct(zw("tanh").final_acc())
        ),
        verdict(
            z("ReLU").identical()
                && z("tanh").identical()
                && z("ReLU").final_acc() < def("ReLU").final_acc() - 0.2,
        ),
        "units identical with both activations, and accuracy 20 points under the default",
    );
    claim(
        "全一初始化 → 效果差,一般不使用 (all-ones init works poorly)",
        format!(
            "test accuracy {} (ReLU), {} (tanh); units identical: {} / {}",
            pct(ones("ReLU").final_acc()),
            pct(ones("tanh").final_acc()),
            yes(ones("ReLU").identical()),
            yes(ones("tanh").identical())
        ),
        verdict(
            ones("ReLU").final_acc() < def("ReLU").final_acc() - 0.05
                && ones("tanh").final_acc() < def("tanh").final_acc() - 0.05,
        ),
        "5 points or more under the default with both activations",
    );
    claim(
        "Kaiming 初始化:为解决 ReLU 设计 (Kaiming init is made for ReLU)",
        format!(
            "ReLU, 3 hidden layers (SGD 0.05, momentum 0.9): Kaiming {}, best init {}; 8 hidden layers (SGD 0.1): Kaiming {} (first/last gradient {}) against PyTorch's default {} ({})",
            pct(kai.final_acc()),
            pct(relu_best),
            pct(kdeep.final_acc()),
            sci(first_grad(kdeep).1),
            pct(rdef8.final_acc()),
            sci(relu8)
        ),
        verdict2(k3 && k8, k3 || k8),
        "Kaiming within 1 point of the best init at 3 layers, and above the default at 8 (partly: one of the two)",
    );
    claim(
        "Xavier 初始化:为 Sigmoid/Tanh 设计 (Xavier init is made for sigmoid/tanh)",
        format!(
            "tanh, 3 hidden layers (SGD 0.05, momentum 0.9): Xavier {}, best init {}; 8 hidden layers (SGD 0.1): Xavier {} (first/last gradient {}) against PyTorch's default {} ({})",
            pct(xav.final_acc()),
            pct(tanh_best),
            pct(xdeep.final_acc()),
            sci(first_grad(xdeep).1),
            pct(tdef8.final_acc()),
            sci(tanh8)
        ),
        verdict2(x3 && x8, x3 || x8),
        "Xavier within 1 point of the best init at 3 layers, and above the default at 8 (partly: one of the two)",
    );
    claim(
        "PyTorch 中许多层已有合理的默认初始化 (PyTorch's default init is reasonable)",
        format!(
            "default: {} (ReLU), {} (tanh); best: {} / {}",
            pct(def("ReLU").final_acc()),
            pct(def("tanh").final_acc()),
            pct(relu_best),
            pct(tanh_best)
        ),
        verdict(
            def("ReLU").final_acc() >= relu_best - 0.02
                && def("tanh").final_acc() >= tanh_best - 0.02,
        ),
        "within 2 points of the best init with both activations",
    );
    claim(
        "Sigmoid 易产生梯度消失,导数范围 (0, 0.25) (sigmoid's gradients vanish)",
        format!(
            "8 hidden layers, epoch 1: first-layer mean \\|grad\\| / last layer's = {} (sigmoid), {} (tanh), {} (ReLU)",
            sci(sig8),
            sci(tanh8),
            sci(relu8)
        ),
        verdict(sig8 < relu8 / 10.0 && sig8 < tanh8 / 10.0),
        "sigmoid's ratio 10× under ReLU's and tanh's",
    );
    claim(
        "Tanh 零中心,收敛速度比 Sigmoid 快 (tanh converges faster than sigmoid)",
        format!(
            "training loss after {} epochs, depth 2/4/8: tanh {}, sigmoid {}",
            r.size.epochs,
            losses("tanh"),
            losses("sigmoid")
        ),
        verdict(tanh_faster),
        "tanh's loss lower at every depth",
    );
    claim(
        "ReLU 缓解梯度消失(正区间) (ReLU relieves vanishing gradients)",
        format!(
            "8 hidden layers, PyTorch's default init: first/last gradient {} (ReLU), {} (leaky ReLU) against {} (sigmoid); test accuracy {} (ReLU; {} with Kaiming init) against {} (sigmoid)",
            sci(relu8),
            sci(leaky8),
            sci(sig8),
            pct(rdef8.final_acc()),
            pct(kdeep.final_acc()),
            pct(sig8acc)
        ),
        verdict2(relu_grad && relu_acc, relu_grad),
        "ReLU's ratio 10× sigmoid's, and its accuracy (default or Kaiming init) 10 points higher at depth 8 (partly: the gradient only)",
    );
    claim(
        "注意学习率设置以防\"死亡神经元\" (mind the learning rate, or ReLU neurons die)",
        format!(
            "dead hidden units after {} epochs of SGD: {} at lr {}, {} at lr {} (the largest that did not diverge); most: {} at lr {}",
            r.size.epochs,
            lo.map_or("–".into(), |x| pct(x.1)),
            lo.map_or(f64::NAN, |x| x.0),
            hi.map_or("–".into(), |x| pct(x.1)),
            hi.map_or(f64::NAN, |x| x.0),
            pct(worst.1),
            worst.0
        ),
        verdict(matches!((lo, hi), (Some(a), Some(b)) if worst.1 > a.1 + 0.05 && b.0 > a.0)),
        "the dead fraction at some larger lr 5 points over the smallest lr's",
    );
    claim(
        "ReLU 效果不佳时,可尝试 Leaky ReLU (when ReLU does poorly, try leaky ReLU)",
        format!(
            "at lr {} (most dead ReLUs): test accuracy {} (ReLU) against {} (leaky ReLU)",
            worst.0,
            pct(lr_at(r, "ReLU", worst.0).final_acc()),
            pct(lr_at(r, "leaky ReLU", worst.0).final_acc())
        ),
        verdict(
            worst.0.is_finite()
                && lr_at(r, "leaky ReLU", worst.0).final_acc()
                    >= lr_at(r, "ReLU", worst.0).final_acc(),
        ),
        "leaky ReLU at least as accurate where ReLU lost the most units",
    );
    claim(
        "若无激活函数,多层网络等价于一个线性模型 (without activations, a deep net is a linear model)",
        format!(
            "the trained stack of 4 Linear layers with no activation, multiplied out into one Linear layer: largest output difference {} on the test set, same prediction on {} of the rows. Trained by SGD, the stack reaches {} and a single Linear layer {}: the same function class, not the same training",
            sci(r.collapse.0),
            pct(r.collapse.1),
            pct(lin.final_acc()),
            pct(single.final_acc())
        ),
        verdict(r.collapse.1 >= 0.99 && r.collapse.0 < 1e-3),
        "the multiplied-out layer gives the same outputs within 1e-3 and the same prediction on 99% of the rows",
    );
    claim(
        "在小数据集上容易过拟合 (on small data sets, networks overfit)",
        format!(
            "PyTorch default, ReLU, 3 hidden layers: on {} training rows ({} epochs) training accuracy {}, test {} (gap {:.1} points); on all {} rows the gap is {:.1} points ({} against {})",
            small_rows,
            r.small.epochs.len(),
            pct(train_acc(&r.small)),
            pct(r.small.final_acc()),
            100.0 * small_gap,
            r.size.train_rows,
            100.0 * gap,
            pct(train_acc(def("ReLU"))),
            pct(def("ReLU").final_acc())
        ),
        verdict(small_gap > 0.05 && small_gap > gap),
        "on the small set, training accuracy over 5 points above test accuracy, and a larger gap than on the full set",
    );

    // The document.
    let mut md = String::new();
    let s = &r.size;
    let _ = writeln!(md, "# The primer's claims, measured\n");
    let _ = writeln!(
        md,
        "Written by `cargo run --release --example primer{}` (examples/primer/): MLPs trained on scikit-learn's 8×8 digits (`data/digits/x.npy`, `y.npy`: 1797 images, pixels divided by 16; a fixed permutation with seed 0 puts {} rows in training and {} in the test set), cross-entropy, batches of 32 shuffled by a generator seeded 0, {} epochs, on the f64 reference (`Backend::CpuReference`). Deterministic: the same command writes the same bytes. Gradient figures come from `train::Monitor` (docs/TRAINING.md, \"Gradient health\").\n",
        if s.quick { " -- --quick" } else { "" },
        s.train_rows,
        s.test_rows,
        s.epochs
    );
    if s.quick {
        let _ = writeln!(
            md,
            "**Quick mode**: a reduced run for CI; the numbers are not the report's.\n"
        );
    }
    let _ = writeln!(
        md,
        "## Headline\n\n| the primer says | we measured | verdict |\n| --- | --- | --- |"
    );
    for [c, m, v, _] in &claims {
        let _ = writeln!(md, "| {c} | {m} | {v} |");
    }
    let _ = writeln!(md, "\nVerdict rules (computed, not judged):\n");
    for [c, _, _, rule] in &claims {
        let short = c.split(" (").next().unwrap_or(c);
        let _ = writeln!(md, "- {short}: {rule}.");
    }
    let _ = writeln!(
        md,
        "\n## Initialization\n\n3 hidden layers of 32, SGD lr 0.05, momentum 0.9; the init applies to every Linear layer (\"weights only\": the biases keep PyTorch's default). \"identical\": every hidden layer's units (weight rows and biases) equal after the last epoch.\n\n![init](primer/init.svg)\n\n| init | ReLU: test acc | ReLU: identical | tanh: test acc | tanh: identical |\n| --- | --- | --- | --- | --- |"
    );
    for (name, _, _) in crate::inits() {
        let (a, b) = (find(&r.init, name, "ReLU"), find(&r.init, name, "tanh"));
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} |",
            pct(a.final_acc()),
            yes(a.identical()),
            pct(b.final_acc()),
            yes(b.identical())
        );
    }
    let _ = writeln!(
        md,
        "\n## Activations and depth\n\nHidden layers of 32 with PyTorch's default init, plain SGD lr 0.1. \"first/last\": the first layer's mean |gradient| over epoch 1 divided by the last layer's. \"saturated\": the first layer's pre-activations with |x| > 4 in the last epoch.\n\n![activations](primer/activations.svg)\n\n| activation | hidden layers | test acc | train loss | first layer mean \\|grad\\| | first/last | saturated |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for (name, depth, o) in &r.act {
        let (g, ratio) = first_grad(o);
        let sat = o
            .epochs
            .last()
            .and_then(|e| e.layers[0].saturated)
            .map_or("–".into(), pct);
        let _ = writeln!(
            md,
            "| {name} | {depth} | {} | {:.4} | {} | {} | {sat} |",
            pct(o.final_acc()),
            last_loss(o),
            sci(g),
            sci(ratio)
        );
    }
    let _ = writeln!(
        md,
        "\n## Dead ReLUs and the learning rate\n\n2 hidden layers of 64, PyTorch's default init, plain SGD. \"dead\": hidden units whose pre-activation was never > 0 over the last epoch (for leaky ReLU: never positive, though it still passes a gradient of 0.01).\n\n![dead](primer/dead_relu.svg)\n\n| lr | ReLU: dead | ReLU: test acc | leaky: never positive | leaky: test acc |\n| --- | --- | --- | --- | --- |"
    );
    for lr in LRS {
        let (a, b) = (lr_at(r, "ReLU", lr), lr_at(r, "leaky ReLU", lr));
        let cell = |o: &Outcome, v: String| {
            o.diverged
                .as_ref()
                .map_or(v, |st| format!("diverged at step {st}"))
        };
        let _ = writeln!(
            md,
            "| {lr} | {} | {} | {} | {} |",
            cell(a, a.dead().map_or("–".into(), pct)),
            cell(a, pct(a.final_acc())),
            cell(b, b.dead().map_or("–".into(), pct)),
            cell(b, pct(b.final_acc()))
        );
    }
    let _ = writeln!(
        md,
        "\n## Deep networks and the matching init\n\n8 hidden layers of 32, plain SGD lr 0.1, as in the table above but with the init the primer recommends.\n\n| activation | init | test acc | train loss | first layer mean \\|grad\\| | first/last |\n| --- | --- | --- | --- | --- | --- |"
    );
    for (a, i, o) in &r.deep {
        let (g, ratio) = first_grad(o);
        let _ = writeln!(
            md,
            "| {a} | {i} | {} | {:.4} | {} | {} |",
            pct(o.final_acc()),
            last_loss(o),
            sci(g),
            sci(ratio)
        );
    }
    let _ = writeln!(
        md,
        "\n## Without activations\n\n3 hidden layers of 32 with no activation: test accuracy {}; a single Linear(64, 10): {} (SGD lr 0.05, momentum 0.9). The stack multiplied out into one layer: largest output difference {} from the stack, the same prediction on {} of the test rows.",
        pct(lin.final_acc()),
        pct(single.final_acc()),
        sci(r.collapse.0),
        pct(r.collapse.1)
    );
    let p = dir.join(if s.quick {
        "PRIMER.quick.md"
    } else {
        "PRIMER.md"
    });
    wgpu_mlp::io::write_atomic(&p, md.as_bytes())?;
    eprintln!("wrote {}", p.display());
    Ok(())
}
