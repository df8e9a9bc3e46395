// The training plan's activations (activation_grad.rs): the forward into a tensor of its own
// (the pre-activation stays for backward) and the backward, gx = gy·f'(x), each with ATen's
// formula and order of operations (its *_backward kernels) and PyTorch's conventions at the
// kinks: ReLU'(0) = 0 (on the output), LeakyReLU'(0) = slope, ELU/SELU/CELU take x ≤ 0,
// Hardtanh/ReLU6 0 on both bounds, Hardsigmoid 1/6 strictly inside (−3, 3), Hardswish 0 at −3
// and 1 at 3, Softplus 1 above its threshold. Sigmoid and tanh differentiate from their output,
// as PyTorch does; the rest from the input. The CPU's `activation_vjp` is the reference.
// `act_any` and `dact_any` (generated from Activation::ALL) switch on dims.kind.

fn dact_identity(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return g;
}

fn dact_sigmoid(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return g * (1.0 - y) * y;
}

fn dact_tanh(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return g * (1.0 - y * y);
}

// threshold_backward on the result: 0 where the output is not > 0 (NaN too).
fn dact_relu(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return select(0.0, g, y > 0.0);
}

fn dact_leaky_relu(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return select(g * p0, g, x > 0.0);
}

// cdf + x·pdf with pdf = exp(−x²/2)/√(2π), as GeluBackward (approximate='none').
fn dact_gelu(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    let cdf = 0.5 * (1.0 + wm_erf(x * 0.70710678118654752));
    let pdf = 0.3989422804014327 * exp(x * x * -0.5);
    return g * (cdf + x * pdf);
}

fn dact_gelu_tanh(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    let beta = 0.7978845608028654;
    let kappa = 0.044715;
    let x_sq = x * x;
    let inner = beta * (x + kappa * x_sq * x);
    let t = wm_tanh(inner);
    let left = 0.5 * x;
    let right = 1.0 + t;
    let left_derivative = 0.5 * right;
    let right_derivative = left * (1.0 - t * t) * (beta * (1.0 + 3.0 * kappa * x_sq));
    return g * (left_derivative + right_derivative);
}

fn dact_silu(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    let s = 1.0 / (1.0 + exp(-x));
    return g * s * (1.0 + x * (1.0 - s));
}

// ELU's family: x ≤ 0 ? g·input_scale·α·scale·exp(x·input_scale) : g·scale.
fn elu_backward(x: f32, g: f32, alpha: f32, scale: f32, input_scale: f32) -> f32 {
    if x <= 0.0 {
        return g * input_scale * (alpha * scale) * exp(x * input_scale);
    }
    return g * scale;
}

fn dact_elu(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return elu_backward(x, g, p0, 1.0, 1.0);
}

fn dact_selu(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return elu_backward(x, g, 1.6732632423543772, 1.0507009873554805, 1.0);
}

fn dact_celu(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return elu_backward(x, g, p0, 1.0, 1.0 / p0);
}

fn dact_mish(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    let s = 1.0 / (1.0 + exp(-x));
    let t = wm_tanh(select(wm_log1p(exp(x)), x, x > 20.0));
    return g * (t + x * s * (1.0 - t * t));
}

// p0: beta, p1: threshold.
fn dact_softplus(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    let z = exp(x * p0);
    return select(g * z / (z + 1.0), g, x * p0 > p1);
}

// p0, p1: the bounds; NaN passes the gradient on (neither comparison holds), as in ATen.
fn dact_hardtanh(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return select(g, 0.0, x <= p0 || x >= p1);
}

fn dact_relu6(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return select(g, 0.0, x <= 0.0 || x >= 6.0);
}

fn dact_hardsigmoid(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    return select(0.0, g * 0.16666667, x > -3.0 && x < 3.0);
}

fn dact_hardswish(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    if x <= -3.0 {
        return 0.0;
    }
    if x < 3.0 {
        return g * (x / 3.0 + 0.5);
    }
    return g;
}

const WG: u32 = 64u;

// The entry points: act_forward (x → y) and act_backward (x, y, gy → gx). Each pipeline's
// module has the bindings of its own direction only, so the Rust side appends the one it needs
// (the text after the marker line below, split at `@compute`).
// ENTRY POINTS
@compute @workgroup_size(WG)
fn act_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * dims.groups_x + wid.x) * WG + lid.x;
    if i >= dims.n {
        return;
    }
    y[i] = act_any(dims.kind, x[i], dims.p0, dims.p1);
}

@compute @workgroup_size(WG)
fn act_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * dims.groups_x + wid.x) * WG + lid.x;
    if i >= dims.n {
        return;
    }
    gx[i] = dact_any(dims.kind, x[i], y[i], gy[i], dims.p0, dims.p1);
}
