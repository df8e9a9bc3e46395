// The losses (loss.rs), value and gradient in one workgroup: PyTorch's formulas as the CPU's
// `Loss::evaluate` has them, in f32. Each invocation takes every WG-th element (or row, for the
// class losses) in order, writes its gradient and sums its losses; a fixed-order tree adds the
// partial sums, so a run repeats bit for bit (no atomics). The loss goes to the step's slot of
// the losses ring in `step`; a loss that is NaN or infinite raises the stop flag there, and the
// update kernels then leave the parameters as they were.
//
// KIND (a pipeline constant): 0 mse, 1 l1, 2 smooth_l1 (param = beta), 3 huber (param =
// delta), 4 bce, 5 bce_with_logits, 6 cross_entropy (param = label smoothing), 7 nll. norm:
// 1/count for mean reduction (elements, or rows for the class losses), 1 for sum. Class targets
// are indices stored as f32 (exact below 2²⁴), checked on the host.

override KIND: u32;

const WG: u32 = 256u;

var<workgroup> part: array<f32, 256>;

fn sign0(d: f32) -> f32 {
    return select(select(0.0, -1.0, d < 0.0), 1.0, d > 0.0);
}

// e^x for x ≤ 0 to about 1 ulp (WGSL's exp promises 3 + 2|x| ulp, and cross-entropy's
// gradient, softmax − target, summed over a batch cancels: a BatchNorm bias trained with Adam
// on it drifted from PyTorch's by 3× PyTorch's own float32 drift with the plain exp). x = n·ln 2
// + r (ln 2 in two parts, Cody and Waite), e^r by its Taylor series to r⁷ (|r| ≤ 0.35: the
// remainder is below 1e-8 relative), scaled by 2^n in two exact steps.
fn exp_precise(x: f32) -> f32 {
    if x < -104.0 {
        return 0.0;
    }
    let n = round(x * 1.44269504);
    let r = fma(-n, 0.693145751953125, x) - n * 1.4286068202862268e-6;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (0.16666667 + r * (0.041666668 + r * (0.008333334
        + r * (0.0013888889 + r * 0.0001984127))))));
    let k = i32(n);
    return ldexp(ldexp(p, k / 2), k - k / 2);
}

fn finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// The loss of one element and, through `gout`, its gradient (before the norm).
fn element(i: u32) -> f32 {
    let x = out[i];
    let t = want[i];
    let d = x - t;
    let beta = dims.param;
    var l = 0.0;
    var gr = 0.0;
    switch KIND {
        case 0u: {
            l = d * d;
            gr = 2.0 * d;
        }
        case 1u: {
            l = abs(d);
            gr = sign0(d);
        }
        case 2u: {
            if abs(d) < beta {
                l = 0.5 * d * d / beta;
                gr = d / beta;
            } else {
                l = abs(d) - 0.5 * beta;
                gr = sign0(d);
            }
        }
        case 3u: {
            if abs(d) < beta {
                l = 0.5 * d * d;
                gr = d;
            } else {
                l = beta * (abs(d) - 0.5 * beta);
                gr = beta * sign0(d);
            }
        }
        case 4u: {
            if !(x >= 0.0 && x <= 1.0) {
                // Outside [0, 1] (or NaN): PyTorch refuses; the stop flag says so.
                l = wm_nan();
            } else {
                l = -(t * max(wm_log(x), -100.0) + (1.0 - t) * max(wm_log(1.0 - x), -100.0));
            }
            gr = d / max((1.0 - x) * x, 1e-12);
        }
        default: {
            l = max(x, 0.0) - x * t + wm_log1p(exp(-abs(x)));
            gr = wm_sigmoid(x) - t;
        }
    }
    grad[i] = gr * dims.norm;
    return l;
}

// The loss of one row of logits (cross-entropy) or log-probabilities (NLL), its gradient
// written.
fn row(r: u32) -> f32 {
    let c = dims.cols;
    let base = r * c;
    let k = u32(want[r]);
    if KIND == 7u {
        for (var j = 0u; j < c; j++) {
            grad[base + j] = select(0.0, -dims.norm, j == k);
        }
        return -out[base + k];
    }
    var m = out[base];
    for (var j = 1u; j < c; j++) {
        m = max(m, out[base + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < c; j++) {
        s = s + exp_precise(out[base + j] - m);
    }
    // s ≥ 1 (the largest term is e^0): log1p keeps log(s)'s digits near 1, where WGSL's log
    // promises only an absolute 2^-21.
    let lse = m + wm_log1p(s - 1.0);
    let e = dims.param;
    var neg_logp_sum = 0.0;
    for (var j = 0u; j < c; j++) {
        let lp = out[base + j] - lse;
        neg_logp_sum = neg_logp_sum - lp;
        let want = select(0.0, 1.0 - e, j == k) + e / f32(c);
        grad[base + j] = (exp_precise(lp) - want) * dims.norm;
    }
    return (1.0 - e) * (lse - out[base + k]) + e * (neg_logp_sum / f32(c));
}

@compute @workgroup_size(WG)
fn loss(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = 0.0;
    if KIND >= 6u {
        for (var r = lid.x; r < dims.rows; r += WG) {
            s = s + row(r);
        }
    } else {
        let n = dims.rows * dims.cols;
        for (var i = lid.x; i < n; i += WG) {
            s = s + element(i);
        }
    }
    part[lid.x] = s;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w = w / 2u) {
        if lid.x < w {
            part[lid.x] = part[lid.x] + part[lid.x + w];
        }
        workgroupBarrier();
    }
    if lid.x == 0u {
        let value = part[0] * dims.norm;
        step[STEP_LOSSES + u32(step[STEP_LOSS_SLOT])] = value;
        if !finite(value) {
            step[STEP_STOP] = 1.0;
        }
    }
}
