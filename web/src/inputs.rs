//! The "Your model" panel's inputs and verdict: a batch from a seed or from pasted text, and
//! how far the GPU's output is from the CPU reference's.

use wgpu_mlp::Generator;

/// The agreement rule of the crate's tests: `|gpu − cpu| ≤ ATOL + RTOL·|cpu|` for every value.
pub const RTOL: f64 = 1e-4;
/// See [`RTOL`].
pub const ATOL: f64 = 1e-5;
/// The most values one batch may hold (64 Mi floats, 256 MiB): larger requests are refused
/// before anything is allocated.
pub const MAX_VALUES: usize = 1 << 26;

/// `batch × width` values of `torch.randn(batch, width)` after `torch.manual_seed(seed)`.
pub fn random(batch: usize, width: usize, seed: u64) -> Result<Vec<f32>, String> {
    let n = batch
        .checked_mul(width)
        .filter(|&n| n <= MAX_VALUES)
        .ok_or_else(|| {
            format!("a batch of {batch} rows of {width} features is over {MAX_VALUES} values")
        })?;
    if batch == 0 {
        return Err("the batch size must be at least 1".into());
    }
    Ok(Generator::new(seed).randn(n))
}

/// Numbers pasted by the user: separated by commas, whitespace, semicolons or brackets (so a
/// JSON array, a CSV row or a NumPy print all work), as many as whole rows of `width` features.
/// `nan`, `inf` and `-inf` are accepted, as PyTorch prints them.
pub fn parse(text: &str, width: usize) -> Result<Vec<f32>, String> {
    if width == 0 {
        return Err("the model has no input features".into());
    }
    let mut out = Vec::new();
    for (i, tok) in text
        .split(|c: char| c.is_whitespace() || ",;[]()".contains(c))
        .filter(|t| !t.is_empty())
        .enumerate()
    {
        if out.len() >= MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} numbers"));
        }
        let v: f32 = tok.parse().map_err(|_| {
            let shown: String = tok.chars().take(24).collect();
            format!("value {}: {shown:?} is not a number", i + 1)
        })?;
        out.push(v);
    }
    if out.is_empty() {
        return Err("no numbers: paste rows of comma- or space-separated values".into());
    }
    if out.len() % width != 0 {
        return Err(format!(
            "{} numbers are not whole rows of the model's {width} input features",
            out.len()
        ));
    }
    Ok(out)
}

/// How two outputs compare.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// Largest `|gpu − cpu|` over values that are both finite (0 if none are).
    pub max_abs_diff: f64,
    /// Values outside `ATOL + RTOL·|cpu|` (a NaN matches only a NaN, an infinity only itself).
    pub mismatches: usize,
    /// Index of the first mismatch.
    pub first_mismatch: Option<usize>,
    /// Values compared.
    pub len: usize,
}

impl Agreement {
    /// Every value within the tolerance.
    pub fn agree(&self) -> bool {
        self.mismatches == 0
    }
}

/// Compares the GPU's output with the CPU reference's, value by value.
pub fn compare(gpu: &[f32], cpu: &[f32]) -> Result<Agreement, String> {
    if gpu.len() != cpu.len() {
        return Err(format!(
            "the outputs differ in length: {} and {}",
            gpu.len(),
            cpu.len()
        ));
    }
    let mut a = Agreement {
        max_abs_diff: 0.0,
        mismatches: 0,
        first_mismatch: None,
        len: gpu.len(),
    };
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let (g, c) = (f64::from(g), f64::from(c));
        let ok = if c.is_nan() || g.is_nan() {
            c.is_nan() && g.is_nan()
        } else if c.is_infinite() || g.is_infinite() {
            g == c
        } else {
            let d = (g - c).abs();
            a.max_abs_diff = a.max_abs_diff.max(d);
            d <= ATOL + RTOL * c.abs()
        };
        if !ok {
            a.mismatches += 1;
            a.first_mismatch.get_or_insert(i);
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn parses_json_csv_and_numpy_text() {
        assert_eq!(parse("[[1, 2], [3, 4]]", 2).unwrap(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(parse("1,2\n3,4\n", 2).unwrap(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(parse("[1. 2.5e-1 -inf]", 3).unwrap()[2], f32::NEG_INFINITY);
        assert!(parse("nan", 1).unwrap()[0].is_nan());
    }

    #[test]
    fn refuses_what_is_not_whole_rows_of_numbers() {
        assert!(parse("1,2,3", 2).unwrap_err().contains("whole rows"));
        assert!(parse("1,x", 2).unwrap_err().contains("\"x\""));
        assert!(parse("  ", 2).unwrap_err().contains("no numbers"));
        assert!(parse("1", 0).is_err());
    }

    #[test]
    fn random_is_torch_randn_and_bounded() {
        // torch.manual_seed(0); torch.randn(3) = [1.5410, -0.2934, -2.1788]
        let x = random(1, 3, 0).unwrap();
        let want = [1.5410f32, -0.2934, -2.1788];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{x:?}");
        }
        assert!(random(0, 3, 0).is_err());
        assert!(random(usize::MAX, 2, 0).is_err());
        assert!(random(1 << 20, 1 << 10, 0).is_err());
    }

    #[test]
    fn compare_uses_the_tolerance_and_matches_nan_and_inf() {
        let a = compare(
            &[1.0, f32::NAN, f32::INFINITY],
            &[1.00005, f32::NAN, f32::INFINITY],
        );
        let a = a.unwrap();
        assert!(a.agree(), "{a:?}");
        let b = compare(&[1.0, 0.0], &[1.001, f32::NAN]).unwrap();
        assert_eq!((b.mismatches, b.first_mismatch), (2, Some(0)));
        assert!(compare(&[1.0], &[]).is_err());
    }
}
