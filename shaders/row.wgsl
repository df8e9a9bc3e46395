// The row kernel (row.rs): an operation on whole rows of a [rows, n4·4] matrix, in place, then
// the step's epilogue on each value. One workgroup per row; reductions in workgroup memory.
//   OP 0, softmax: PyTorch's CPU algorithm, m = max (NaN-propagating), e = exp(x − m),
//     y = e · (1/Σe). Rows with +inf or NaN, or all −inf, come out all NaN, as in PyTorch.
//   OP 1, log-softmax: (x − m) − log Σe, the subtractions in that order (PyTorch's).
//   OP 2, normalize (LayerNorm before its affine part, which is the epilogue):
//     (x − mean) / √(var + eps) with the biased variance, two passes over the row, on the row
//     scaled by a power of two s near its largest magnitude: (x/s − mean/s) / √(var/s² + eps/s²)
//     is the same value (exactly, for a power of two), and neither the sum nor the squares can
//     overflow (unscaled, rows of 1e19 and more came out as the bias alone). The statistics are
//     of d = x/s − x₀/s, shifted by the row's first value: a constant row gives d = 0 exactly
//     (an f32 mean of 12345.678s is not 12345.678, and its rounding error over √eps came out as
//     0.3), and a row with a large mean and a small spread keeps its digits.
// Padding lanes (at or past n_out) are excluded and written 0.

override OP: u32 = 0u;
override WG: u32 = 64u;

var<workgroup> red: array<f32, WG>;

// Reduces each invocation's `v` over the workgroup: the maximum (NaN-propagating) when `is_max`,
// else the sum. Every invocation must call it (barriers).
fn reduce(t: u32, v: f32, is_max: bool) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if t < s {
            if is_max {
                red[t] = wm_max(red[t], red[t + s]);
            } else {
                red[t] = red[t] + red[t + s];
            }
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(WG)
fn row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    // Uniform control flow: every invocation of the workgroup reaches each barrier, so the row
    // check only guards memory accesses.
    let r = wid.y * dims.groups_x + wid.x;
    let live = r < dims.rows;
    let base = r * dims.n4 * 4u;
    let t = lid.x;
    let n = dims.n_out;

    // Normalize's scale: 1/s, s a power of two at or above the row's largest magnitude. A row
    // with NaN or ±inf keeps s = 1 (its output is NaN, as in PyTorch).
    var inv_s = 1.0;
    if OP == 2u {
        var m = 0.0;
        if live {
            for (var c = t; c < n; c = c + WG) {
                m = wm_max(m, abs(y[base + c]));
            }
        }
        let largest = reduce(t, m, true);
        // Finite and non-zero, by its bits (0x7f800000 is +inf; NaN is above it): a literal
        // f32 maximum is one browsers' WGSL compilers reject, and x − x tests can be folded.
        if largest > 0.0 && bitcast<u32>(largest) < 0x7f800000u {
            inv_s = ldexp(1.0, -clamp(i32(ceil(log2(largest))), -126, 126));
        }
    }

    // Normalize's shift: the row's first value, scaled.
    var x0 = 0.0;
    if OP == 2u && live {
        x0 = y[base] * inv_s;
    }

    // First pass: the max (softmax, log-softmax) or the sum (normalize, of d).
    var a = select(-wm_inf(), 0.0, OP == 2u);
    if live {
        for (var c = t; c < n; c = c + WG) {
            if OP == 2u {
                a = a + (y[base + c] * inv_s - x0);
            } else {
                a = wm_max(a, y[base + c]);
            }
        }
    }
    let first = reduce(t, a, OP != 2u);

    // Second pass: Σ exp(x − m), or Σ (d − mean d)².
    let mean = first / f32(n);
    var b = 0.0;
    if live {
        for (var c = t; c < n; c = c + WG) {
            if OP == 2u {
                let d = (y[base + c] * inv_s - x0) - mean;
                b = b + d * d;
            } else {
                b = b + exp(y[base + c] - first);
            }
        }
    }
    let second = reduce(t, b, false);

    if live {
        let inv_sum = 1.0 / second;
        let log_sum = wm_log(second);
        // var/s² + eps/s²; eps/s² underflows to 0 for large s, and then a constant row (all
        // d − mean = 0) gives 0 here: its output is 0 (then the bias), as unscaled. With eps = 0
        // it stays 1/0 = inf, and 0 · inf = NaN, as in PyTorch.
        let var_s = second / f32(n) + dims.eps * inv_s * inv_s;
        let inv_std = select(1.0 / sqrt(var_s), 0.0, var_s == 0.0 && dims.eps > 0.0);
        for (var c = t; c < dims.n4 * 4u; c = c + WG) {
            if c < n {
                let x = y[base + c];
                var v: f32;
                if OP == 0u {
                    v = exp(x - first) * inv_sum;
                } else if OP == 1u {
                    v = (x - first) - log_sum;
                } else {
                    v = ((x * inv_s - x0) - mean) * inv_std;
                }
                y[base + c] = ep_value(v, c);
            } else {
                y[base + c] = 0.0;
            }
        }
    }
}
