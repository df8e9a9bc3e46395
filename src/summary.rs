//! The text torchsummary 1.5.1 prints for a model, character for character.
//!
//! Every module gets a row in forward order (`Linear-1`, `BatchNorm1d-2`, `ReLU-3`, …), numbered
//! globally exactly as torchsummary numbers them; functions called in `forward()` (and identity
//! as a [`Layer`](crate::Layer)'s activation) have none. See `pytorch-semantics.md` §4 for the
//! layout and the MB arithmetic. A table can be made from [`Row`]s alone, so a summary of widths
//! never allocates weights.

use crate::model::Mlp;

/// Width of the separator lines.
const RULE_WIDTH: usize = 64;

/// Bytes per element torchsummary assumes, whatever the dtype.
const BYTES_PER_ELEMENT: f64 = 4.0;

/// torchsummary's "MB": really MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// One row of the table: a module's class, its output width and its parameter count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The PyTorch class name (`Linear`, `ReLU`, …).
    pub class: String,
    /// Features of its output.
    pub width: u64,
    /// Parameters as torchsummary counts them (`weight` and `bias`).
    pub params: u64,
}

/// The rows of `model`'s table.
pub fn rows(model: &Mlp) -> Vec<Row> {
    let mut width = model.in_features();
    let mut out = Vec::new();
    for m in model.modules() {
        width = m.out_width(width).unwrap_or(width);
        if let Some(class) = m.class() {
            out.push(Row {
                class: class.to_string(),
                width: width as u64,
                params: m.param_count() as u64,
            });
        }
    }
    out
}

/// The text `torchsummary.summary(model, (in,), batch_size)` (version 1.5.1) prints.
/// `batch_size` may be -1 (torchsummary's default) or any other value; it only changes the
/// displayed shapes and the MB figures. Every line ends with `'\n'`.
///
/// ```
/// use wgpu_mlp::{Activation, Layer, Linear, Mlp};
/// let fc1 = Linear::new(3, 3, vec![0.5; 9], Some(vec![0.0; 3]))?;
/// let fc2 = Linear::new(3, 2, vec![0.5; 6], Some(vec![0.0; 2]))?;
/// let model = Mlp::from_layers(vec![
///     Layer { linear: fc1, activation: Activation::Sigmoid },
///     Layer { linear: fc2, activation: Activation::Identity },
/// ])?;
/// let text = wgpu_mlp::summary::summary(&model, -1);
/// assert!(text.contains("           Sigmoid-2                    [-1, 3]               0\n"));
/// assert!(text.contains("Total params: 20\n"));
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
pub fn summary(model: &Mlp, batch_size: i64) -> String {
    table(model.in_features() as u64, &rows(model), batch_size)
}

/// The table of a model with `in_features` inputs and these rows.
pub fn table(in_features: u64, rows: &[Row], batch_size: i64) -> String {
    let batch = i128::from(batch_size);
    let dashes = "-".repeat(RULE_WIDTH);
    let equals = "=".repeat(RULE_WIDTH);

    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    line(&dashes);
    line(&row("Layer (type)", "Output Shape", "Param #"));
    line(&equals);

    // torchsummary sums `np.prod(output_shape)` over the rows in int64 and the params in a torch
    // int64 tensor; i128 holds both exactly for any realistic model.
    let mut total_params: i128 = 0;
    let mut total_output: i128 = 0;
    for (i, r) in rows.iter().enumerate() {
        let shape = format!("[{batch_size}, {}]", r.width);
        let params = i128::from(r.params);
        line(&row(
            &format!("{}-{}", r.class, i + 1),
            &shape,
            &thousands(params),
        ));
        total_params += params;
        total_output += batch * i128::from(r.width);
    }

    line(&equals);
    line(&format!("Total params: {}", thousands(total_params)));
    line(&format!("Trainable params: {}", thousands(total_params)));
    line("Non-trainable params: 0");
    line(&dashes);

    // The same operations, in the same order, as torchsummary 1.5.1 (all in float64):
    //   total_input_size  = abs(np.prod(input_size) * batch_size * 4. / (1024 ** 2.))
    //   total_output_size = abs(2. * total_output * 4. / (1024 ** 2.))
    //   total_params_size = abs(total_params.numpy() * 4. / (1024 ** 2.))
    //   total_size = total_params_size + total_output_size + total_input_size
    let n_in = i128::from(in_features);
    let input_size = ((n_in * batch) as f64 * BYTES_PER_ELEMENT / MIB).abs();
    let output_size = (2.0 * total_output as f64 * BYTES_PER_ELEMENT / MIB).abs();
    let params_size = (total_params as f64 * BYTES_PER_ELEMENT / MIB).abs();
    let total_size = params_size + output_size + input_size;

    line(&format!("Input size (MB): {}", format_2f(input_size)));
    line(&format!(
        "Forward/backward pass size (MB): {}",
        format_2f(output_size)
    ));
    line(&format!("Params size (MB): {}", format_2f(params_size)));
    line(&format!(
        "Estimated Total Size (MB): {}",
        format_2f(total_size)
    ));
    line(&dashes);
    out
}

/// One table line: `"{:>20}  {:>25} {:>15}"` (over-long fields push the columns right).
fn row(key: &str, shape: &str, params: &str) -> String {
    format!("{key:>20}  {shape:>25} {params:>15}")
}

/// Python's `"{:,}".format(n)`: comma thousands separators.
fn thousands(n: i128) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Python's `"%0.2f" % x`: the exact binary value of `x` rounded to 2 decimals, ties to even
/// (`0.125` → `"0.12"`, `0.375` → `"0.38"`), `"nan"`, `"inf"`, `"-inf"`, and `"-0.00"` for
/// negative values that round to zero.
///
/// Rust's `{:.2}` formats the exact binary value and breaks exact ties to even, which is Python's
/// rule; the unit tests check it against an independent exact implementation.
fn format_2f(x: f64) -> String {
    if x.is_nan() {
        "nan".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::{format_2f, thousands};

    /// An independent reference for `%.2f` on finite `x` with `|x| < 2^63 / 100`: exact integer
    /// arithmetic on the binary value, ties to even.
    fn exact_2f(x: f64) -> String {
        let neg = x.is_sign_negative();
        let bits = x.abs().to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1u64 << 52) - 1);
        // |x| = m · 2^e exactly.
        let (m, e) = if exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), exp - 1075)
        };
        // hundredths = round_half_even(m · 100 · 2^e)
        let scaled = u128::from(m) * 100;
        let hundredths: u128 = if e >= 0 {
            scaled << e
        } else {
            let k = -e;
            if k >= 127 {
                0 // m·100 < 2^60 ≤ 2^(k-1): below one half.
            } else {
                let q = scaled >> k;
                let r = scaled - (q << k);
                let half = 1u128 << (k - 1);
                if r > half || (r == half && q % 2 == 1) {
                    q + 1
                } else {
                    q
                }
            }
        };
        format!(
            "{}{}.{:02}",
            if neg { "-" } else { "" },
            hundredths / 100,
            hundredths % 100
        )
    }

    #[test]
    fn ties_round_to_even_on_the_exact_binary_value() {
        for (x, want) in [
            (0.125, "0.12"),
            (0.375, "0.38"),
            (0.625, "0.62"),
            (0.875, "0.88"),
            (1.125, "1.12"),
            (2.375, "2.38"),
            (1_000_000.625, "1000000.62"),
            (12_345_678.875, "12345678.88"),
            // Not ties: the binary value lies above or below the decimal midpoint.
            (0.005, "0.01"), // 0.005000000000000000104…
            (0.015, "0.01"), // 0.01499999999999999944…
            (0.045, "0.04"), // 0.04499999999999999833…
            (2.675, "2.67"), // 2.67499999999999982236…
            (1.005, "1.00"), // 1.00499999999999989342…
            (0.0, "0.00"),
            (-0.0, "-0.00"),
            (-0.001, "-0.00"),
            (-0.125, "-0.12"),
            (0.999, "1.00"),
            (0.995, "0.99"),    // 0.99499999999999999555…
            (9.995, "9.99"),    // 9.99499999999999921840…
            (99.995, "100.00"), // 99.99500000000000454747…
            (1e15, "1000000000000000.00"),
            (f64::MIN_POSITIVE, "0.00"),
            (5e-324, "0.00"),
        ] {
            assert_eq!(format_2f(x), want, "%.2f of {x:e}");
            assert_eq!(exact_2f(x), want, "reference %.2f of {x:e}");
        }
        assert_eq!(format_2f(f64::NAN), "nan");
        assert_eq!(format_2f(f64::INFINITY), "inf");
        assert_eq!(format_2f(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn mib_values_match_the_exact_reference() {
        // torchsummary's MB values are k / 2^18 (elements · 4 / 2^20) and, for the output size,
        // k / 2^17: walk every one up to 4 MiB, then a strided sweep of larger values.
        for k in 0u64..(1 << 20) {
            let x = k as f64 / (1u64 << 18) as f64;
            assert_eq!(format_2f(x), exact_2f(x), "k = {k}");
        }
        let mut k: u64 = 1 << 20;
        while k < 1 << 50 {
            let x = k as f64 / (1u64 << 18) as f64;
            assert_eq!(format_2f(x), exact_2f(x), "k = {k}");
            k = k * 17 / 16 + 7;
        }
    }

    #[test]
    fn arbitrary_doubles_match_the_exact_reference() {
        // A fixed xorshift sweep over magnitudes from 1e-6 to 1e15.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let mantissa = (s >> 11) as f64 / (1u64 << 53) as f64;
            let exp = (s % 22) as i32 - 6;
            let x = mantissa * 10f64.powi(exp);
            assert_eq!(format_2f(x), exact_2f(x), "x = {x:e}");
        }
    }

    #[test]
    fn thousands_separators() {
        for (n, want) in [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1_000, "1,000"),
            (109_386, "109,386"),
            (1_000_000, "1,000,000"),
            (138_357_544, "138,357,544"),
            (-1_234_567, "-1,234,567"),
        ] {
            assert_eq!(thousands(n), want);
        }
    }
}
