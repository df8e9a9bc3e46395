//! A random generator bit-compatible with PyTorch's default CPU generator (MT19937).
//!
//! [`Generator::new`]`(s)` is `torch.manual_seed(s)`: the same Mersenne Twister, seeded the same
//! way, consumed in the same order by the same transformations. What is reproduced, and how exactly:
//!
//! | operation | PyTorch equivalent | parity |
//! | --- | --- | --- |
//! | [`Generator::next_u32`] | `CPUGeneratorImpl::random()` | bit-exact |
//! | [`Generator::next_u64`] | `CPUGeneratorImpl::random64()` | bit-exact |
//! | [`Generator::uniform_`] | `tensor.uniform_(from, to)` on a float32 tensor | bit-exact (checked against PyTorch fixtures) |
//! | [`Generator::uniform_f64`] | `uniform_real_distribution<double>` | bit-exact |
//! | [`Generator::normal_`], fewer than 16 elements | `normal_distribution<double>` with the generator's cached second sample | same draws and formula; not checked against PyTorch output (the last bit relies on the platform's `log1p`/`sin`/`cos`) |
//! | [`Generator::normal_`], 16 elements or more | `normal_fill` with the AVX2 `NormalFill16` kernel | same draws, block layout and op sequence (a port of `avx_mathfun.h`); not checked against PyTorch output, and PyTorch's compiler may fuse some of its multiply-adds, so expect last-bit differences |
//!
//! Every normal sample is consumed from the stream exactly as PyTorch consumes it, so after any
//! sequence of `uniform_`/`normal_` calls the generator is in the same state as PyTorch's.

use std::f64::consts::PI;
use std::fmt;

use crate::error::{Error, Result};

/// The seed used when none is given: PyTorch's default CPU generator seed.
pub const DEFAULT_SEED: u64 = 67_280_421_310_721;

/// MT19937 state size (words).
const N: usize = 624;
/// MT19937 middle word offset.
const M: usize = 397;

/// 2⁻²⁴: a float32 uniform keeps the low 24 bits of a draw (float32 has 24 significand bits).
const F32_UNIT: f32 = 1.0 / (1u32 << 24) as f32;
/// 2⁻⁵³: a float64 uniform keeps the low 53 bits of a 64-bit draw.
const F64_UNIT: f64 = 1.0 / (1u64 << 53) as f64;

/// A random generator seeded like `torch.manual_seed` and consumed like PyTorch's CPU generator.
///
/// ```
/// use wgpu_mlp::Generator;
/// // torch.manual_seed(0); torch.rand(3) -> tensor([0.4963, 0.7682, 0.0885])
/// let x = Generator::new(0).rand(3);
/// assert_eq!(format!("{:.4} {:.4} {:.4}", x[0], x[1], x[2]), "0.4963 0.7682 0.0885");
/// ```
#[derive(Clone, PartialEq)]
pub struct Generator {
    seed: u64,
    state: [u32; N],
    /// Index of the next word of `state` to temper; `N` means the state must be regenerated.
    next: usize,
    /// The second Box–Muller sample of the scalar normal path, kept for the next call exactly as
    /// `CPUGeneratorImpl::next_double_normal_sample` is.
    next_double_normal: Option<f64>,
}

impl fmt::Debug for Generator {
    /// Shows the seed and the position in the state, not the 624 state words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("seed", &self.seed)
            .field("next", &self.next)
            .field("next_double_normal", &self.next_double_normal)
            .finish_non_exhaustive()
    }
}

impl Default for Generator {
    /// A generator with PyTorch's default seed, [`DEFAULT_SEED`].
    fn default() -> Self {
        Generator::new(DEFAULT_SEED)
    }
}

impl Generator {
    /// Seeds the generator as `torch.manual_seed(seed)` does.
    ///
    /// PyTorch's `mt19937(uint64_t seed)` runs the standard 32-bit `init_genrand` on
    /// `seed & 0xFFFF_FFFF`: `s[0] = seed mod 2³²`, `s[i] = 1812433253·(s[i−1] ⊕ (s[i−1] ≫ 30)) + i
    /// (mod 2³²)`. So seeds that agree in their low 32 bits give the same stream, in PyTorch too;
    /// [`Generator::seed`] still reports the full value, like `torch.initial_seed()`.
    pub fn new(seed: u64) -> Self {
        let mut state = [0u32; N];
        state[0] = seed as u32; // truncation is the point: init_genrand takes 32 bits
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Generator {
            seed,
            state,
            next: N,
            next_double_normal: None,
        }
    }

    /// Reseeds in place, as `torch.manual_seed(seed)` on an existing generator (the cached normal
    /// sample is dropped too).
    pub fn manual_seed(&mut self, seed: u64) {
        *self = Generator::new(seed);
    }

    /// The whole state as words, for a checkpoint: the seed (low, high), the position, whether
    /// a normal sample is cached and its bits (low, high), then the 624 state words.
    pub(crate) fn to_words(&self) -> Vec<u32> {
        let cached = self.next_double_normal.map(f64::to_bits);
        let mut w = vec![
            self.seed as u32,
            (self.seed >> 32) as u32,
            self.next as u32,
            u32::from(cached.is_some()),
            cached.unwrap_or(0) as u32,
            (cached.unwrap_or(0) >> 32) as u32,
        ];
        w.extend_from_slice(&self.state);
        w
    }

    /// The generator [`Generator::to_words`] wrote; `None` for words that are not one.
    pub(crate) fn from_words(w: &[u32]) -> Option<Self> {
        if w.len() != 6 + N || w[2] as usize > N || w[3] > 1 {
            return None;
        }
        let bits = u64::from(w[4]) | (u64::from(w[5]) << 32);
        Some(Generator {
            seed: u64::from(w[0]) | (u64::from(w[1]) << 32),
            state: w[6..].try_into().ok()?,
            next: w[2] as usize,
            next_double_normal: (w[3] == 1).then(|| f64::from_bits(bits)),
        })
    }

    /// The seed this generator was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Regenerates the 624 state words (the MT19937 "twist").
    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..N {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % N] & LOWER);
            let mut v = self.state[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= MATRIX_A;
            }
            self.state[i] = v;
        }
        self.next = 0;
    }

    /// The next 32-bit output of MT19937 (PyTorch's `random()`).
    pub fn next_u32(&mut self) -> u32 {
        if self.next >= N {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Two 32-bit outputs joined as `(first ≪ 32) | second` (PyTorch's `random64()`).
    pub fn next_u64(&mut self) -> u64 {
        let hi = self.next_u32();
        let lo = self.next_u32();
        (u64::from(hi) << 32) | u64::from(lo)
    }

    /// One float32 uniform draw, PyTorch's `uniform_real_distribution<float>`:
    /// `x = (r & 0xFFFFFF)·2⁻²⁴`, then `fma(x, to − from, from)` in f32 (`to − from` rounded to f32
    /// first).
    ///
    /// The source says `x * (to - from) + from`, but PyTorch's x86 kernels are compiled with FMA
    /// and contraction on, so the multiply-add is fused: the fused form matches all 494 weights of
    /// the PyTorch fixtures in `tests/data`, the unfused one gets 182 of them wrong by an ulp or more.
    ///
    /// This is the raw formula: when rounding lands on `to` it returns `to`. [`Generator::uniform_`]
    /// applies PyTorch's fix-up for that case.
    pub fn uniform_f32(&mut self, from: f32, to: f32) -> f32 {
        let x = (self.next_u32() & 0x00ff_ffff) as f32 * F32_UNIT;
        x.mul_add(to - from, from)
    }

    /// One float64 uniform draw, PyTorch's `uniform_real_distribution<double>`:
    /// `x = (random64() & (2⁵³ − 1))·2⁻⁵³`, then `fma(x, to − from, from)` in f64 (fused like the
    /// float32 case; for U[0, 1) fused or not gives `x`).
    pub fn uniform_f64(&mut self, from: f64, to: f64) -> f64 {
        let x = (self.next_u64() & ((1u64 << 53) - 1)) as f64 * F64_UNIT;
        x.mul_add(to - from, from)
    }

    /// Fills `out` as PyTorch's float32 `tensor.uniform_(from, to)`, one draw per element in memory
    /// order: `v = fma(x, t − f, f)` with `x = (r & 0xFFFFFF)·2⁻²⁴`, `f = from as f32`,
    /// `t = to as f32`, in f32 (see [`Generator::uniform_f32`]). A value that rounds up to `t` is replaced by `f` (current PyTorch
    /// does this so the range stays half-open, `[from, to)`).
    ///
    /// Errors, with PyTorch's texts, checked before anything is drawn (even for an empty `out`):
    /// `from is out of bounds for float` / `to is out of bounds for float` (NaN, or beyond ±f32::MAX),
    /// `uniform_ expects to return a [from, to) range, but found from=2.2 > to=1.2`, and
    /// `uniform_ expects to-from <= std::numeric_limits<Float>::max(), …` when `to − from` overflows f32.
    pub fn uniform_(&mut self, out: &mut [f32], from: f64, to: f64) -> Result<()> {
        check_uniform_args(from, to)?;
        let (f, t) = (from as f32, to as f32);
        for v in out.iter_mut() {
            let x = self.uniform_f32(f, t);
            *v = if x == t { f } else { x };
        }
        Ok(())
    }

    /// `torch.rand(n)`: `n` float32 draws from U[0, 1).
    pub fn rand(&mut self, n: usize) -> Vec<f32> {
        let mut v = vec![0.0; n];
        // [0, 1) always passes the argument checks.
        let _ = self.uniform_(&mut v, 0.0, 1.0);
        v
    }

    /// `torch.randn(n)`: `n` float32 draws from N(0, 1), by [`Generator::normal_`].
    pub fn randn(&mut self, n: usize) -> Vec<f32> {
        let mut v = vec![0.0; n];
        // std = 1 always passes the argument check.
        let _ = self.normal_(&mut v, 0.0, 1.0);
        v
    }

    /// One sample of PyTorch's scalar `normal_distribution<double>(mean, std)`, Box–Muller with a
    /// cached second value:
    ///
    /// - if a sample `z` is cached, take it (and clear the cache);
    /// - otherwise `u1 = uniform_f64(0, 1)`, `u2 = uniform_f64(0, 1)`, `r = √(−2·log1p(−u2))`,
    ///   `θ = 2π·u1`; cache `r·sin θ`, and `z = r·cos θ`;
    /// - return `fma(z, std, mean)` in f64 (fused, on the evidence of the uniform case).
    ///
    /// The cache lives in the generator (as in `CPUGeneratorImpl`), so it carries over between
    /// calls; [`Generator::manual_seed`] clears it. The draws and the formula are PyTorch's, but no
    /// fixture checks this path: the float64 `log1p`/`sin`/`cos` come from the platform's libm (as
    /// in PyTorch), and whether PyTorch's build fuses the final multiply-add is inferred, not seen.
    pub fn normal_f64(&mut self, mean: f64, std: f64) -> f64 {
        if let Some(z) = self.next_double_normal.take() {
            return z.mul_add(std, mean);
        }
        let u1 = self.uniform_f64(0.0, 1.0);
        let u2 = self.uniform_f64(0.0, 1.0);
        let r = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * PI * u1;
        self.next_double_normal = Some(r * theta.sin());
        (r * theta.cos()).mul_add(std, mean)
    }

    /// Fills `out` as PyTorch's float32 `tensor.normal_(mean, std)` on a contiguous tensor.
    ///
    /// - Fewer than 16 elements: each element is [`Generator::normal_f64`]`(mean, std)` cast to f32
    ///   (PyTorch's scalar path, including the cached second sample).
    /// - 16 or more: every element first gets a float32 uniform `d[i] ∈ [0, 1)`; then each full block
    ///   of 16 is transformed in place, for `j` in 0..8: `u1 = 1 − d[j]`, `u2 = d[j+8]`,
    ///   `r = √(−2·ln u1)`, `θ = 2π·u2`, `d[j] = fma(r·cos θ, std, mean)`,
    ///   `d[j+8] = fma(r·sin θ, std, mean)` (all f32, `mean`/`std` cast to f32). If the length is
    ///   not a multiple of 16, the last 16 elements are refilled with fresh uniforms and transformed
    ///   again. `ln`, `sin` and `cos` are a scalar port of PyTorch's AVX2 `log256_ps` and
    ///   `sincos256_ps` (Cephes polynomials), which is what x86 builds of PyTorch run. That port
    ///   follows the same f32 operations but has not been compared with PyTorch output; PyTorch's
    ///   compiler may also fuse some of those multiply-adds, so treat bit-for-bit parity of this path
    ///   as unverified. The distribution is N(mean, std²) either way.
    ///
    /// Error: `normal expects std >= 0.0, but found std -1` (PyTorch's text) when `std < 0` or NaN,
    /// checked before anything is drawn.
    pub fn normal_(&mut self, out: &mut [f32], mean: f64, std: f64) -> Result<()> {
        // NaN fails too, as PyTorch's `TORCH_CHECK(std >= 0.0)` does.
        if std.is_nan() || std < 0.0 {
            return Err(Error::invalid(format!(
                "normal expects std >= 0.0, but found std {}",
                fmt_g(std)
            )));
        }
        if out.len() >= 16 {
            self.normal_fill(out, mean as f32, std as f32);
        } else {
            for v in out.iter_mut() {
                *v = self.normal_f64(mean, std) as f32;
            }
        }
        Ok(())
    }

    /// PyTorch's `normal_fill` for float32: uniforms first, then Box–Muller per block of 16, then
    /// the tail block refilled. Needs `out.len() >= 16`.
    fn normal_fill(&mut self, out: &mut [f32], mean: f32, std: f32) {
        for v in out.iter_mut() {
            *v = self.uniform_f32(0.0, 1.0);
        }
        let n = out.len();
        for block in out.chunks_exact_mut(16) {
            normal_fill_16(block, mean, std);
        }
        if !n.is_multiple_of(16) {
            // The last partial block overlaps the previous full one: PyTorch redraws all 16.
            let tail = &mut out[n - 16..];
            for v in tail.iter_mut() {
                *v = self.uniform_f32(0.0, 1.0);
            }
            normal_fill_16(tail, mean, std);
        }
    }
}

/// PyTorch's argument checks for float32 `uniform_(from, to)`, with its message texts.
fn check_uniform_args(from: f64, to: f64) -> Result<()> {
    let (min, max) = (f64::from(f32::MIN), f64::from(f32::MAX));
    // RangeInclusive::contains is false for NaN, like PyTorch's `var >= min && var <= max`.
    if !(min..=max).contains(&from) {
        return Err(Error::invalid("from is out of bounds for float"));
    }
    if !(min..=max).contains(&to) {
        return Err(Error::invalid("to is out of bounds for float"));
    }
    if from > to {
        return Err(Error::invalid(format!(
            "uniform_ expects to return a [from, to) range, but found from={} > to={}",
            fmt_g(from),
            fmt_g(to)
        )));
    }
    if to - from > max {
        return Err(Error::invalid(format!(
            "uniform_ expects to-from <= std::numeric_limits<Float>::max(), but found to={} and \
             from={} which result in to-from to exceed the limit",
            fmt_g(to),
            fmt_g(from)
        )));
    }
    Ok(())
}

/// Box–Muller on 16 float32 uniforms in place (PyTorch's AVX2 `NormalFill16<float>`).
fn normal_fill_16(d: &mut [f32], mean: f32, std: f32) {
    // `2.0f * c10::pi<double>` is computed in f64, then splatted as f32.
    const TWO_PI: f32 = (2.0 * PI) as f32;
    for j in 0..8 {
        let u1 = 1.0 - d[j]; // [0, 1) → (0, 1] so the log is finite
        let u2 = d[j + 8];
        let radius = (-2.0 * cephes::log(u1)).sqrt();
        let (sin, cos) = cephes::sincos(TWO_PI * u2);
        d[j] = (radius * cos).mul_add(std, mean);
        d[j + 8] = (radius * sin).mul_add(std, mean);
    }
}

/// A lane-by-lane port of PyTorch's `avx_mathfun.h` (Cephes single-precision `log` and `sincos`,
/// after Julien Pommier's `sse_mathfun.h`, zlib license). Each vector instruction becomes the same
/// scalar f32 operation, in the same order, without fusing.
// The constants are the C source's literals, digits and all, so they round to f32 exactly as there.
#[allow(clippy::excessive_precision, clippy::approx_constant)]
mod cephes {
    // The C source writes these as double literals stored into float arrays: round f64 → f32 the
    // same way.
    const SQRTHF: f32 = 0.707_106_781_186_547_524_f64 as f32;
    const LOG_P: [f32; 9] = [
        7.037_683_629_2e-2_f64 as f32,
        -1.151_461_031_0e-1_f64 as f32,
        1.167_699_874_0e-1_f64 as f32,
        -1.242_014_084_6e-1_f64 as f32,
        1.424_932_278_7e-1_f64 as f32,
        -1.666_805_766_5e-1_f64 as f32,
        2.000_071_476_5e-1_f64 as f32,
        -2.499_999_399_3e-1_f64 as f32,
        3.333_333_117_4e-1_f64 as f32,
    ];
    const LOG_Q1: f32 = -2.121_944_40e-4_f64 as f32;
    const LOG_Q2: f32 = 0.693_359_375;

    const DP1: f32 = -0.785_156_25;
    const DP2: f32 = -2.418_756_484_985_351_562_5e-4_f64 as f32;
    const DP3: f32 = -3.774_894_977_445_941_08e-8_f64 as f32;
    const SINCOF: [f32; 3] = [
        -1.951_529_589_1e-4_f64 as f32,
        8.332_160_873_6e-3_f64 as f32,
        -1.666_665_461_1e-1_f64 as f32,
    ];
    const COSCOF: [f32; 3] = [
        2.443_315_711_809_948e-5_f64 as f32,
        -1.388_731_625_493_765e-3_f64 as f32,
        4.166_664_568_298_827e-2_f64 as f32,
    ];
    const FOPI: f32 = 1.273_239_544_735_16_f64 as f32; // 4/π

    const SIGN: u32 = 0x8000_0000;

    /// Natural log (`log256_ps`); NaN for `x <= 0`.
    pub(super) fn log(x: f32) -> f32 {
        let invalid = x <= 0.0;
        // _mm256_max_ps(x, min_norm_pos): cut off denormals.
        let x = if x > f32::MIN_POSITIVE {
            x
        } else {
            f32::MIN_POSITIVE
        };
        let bits = x.to_bits();
        let mut e = ((bits >> 23) as i32 - 0x7f) as f32;
        // Keep the fraction, with exponent of 0.5: x ∈ [0.5, 1).
        let mut x = f32::from_bits((bits & !0x7f80_0000) | 0.5f32.to_bits());
        e += 1.0;
        let mask = x < SQRTHF;
        let tmp = if mask { x } else { 0.0 };
        x -= 1.0;
        e -= if mask { 1.0 } else { 0.0 };
        x += tmp;
        let z = x * x;
        let mut y = LOG_P[0];
        for &p in &LOG_P[1..] {
            y = y * x + p;
        }
        y *= x;
        y *= z;
        y += e * LOG_Q1;
        y -= z * 0.5;
        x += y;
        x += e * LOG_Q2;
        if invalid { f32::NAN } else { x }
    }

    /// `(sin x, cos x)` (`sincos256_ps`), accurate for |x| < 8192; here x ∈ [0, 2π).
    pub(super) fn sincos(x: f32) -> (f32, f32) {
        let mut sign_sin = x.to_bits() & SIGN;
        let mut x = x.abs();
        // Octant: j = (trunc(x·4/π) + 1) & !1.
        let j = (((x * FOPI) as i32).wrapping_add(1)) & !1;
        let y = j as f32;
        let swap_sign_sin = ((j & 4) as u32) << 29;
        let poly_mask = j & 2 == 0;
        let sign_cos = ((!j.wrapping_sub(2) & 4) as u32) << 29;
        sign_sin ^= swap_sign_sin;

        // Extended-precision reduction: x = ((x − y·DP1) − y·DP2) − y·DP3.
        x += y * DP1;
        x += y * DP2;
        x += y * DP3;

        let z = x * x;
        let mut yc = COSCOF[0];
        yc = yc * z + COSCOF[1];
        yc = yc * z + COSCOF[2];
        yc *= z;
        yc *= z;
        yc -= z * 0.5;
        yc += 1.0;

        let mut ys = SINCOF[0];
        ys = ys * z + SINCOF[1];
        ys = ys * z + SINCOF[2];
        ys *= z;
        ys *= x;
        ys += x;

        // Select with masks and add, as the vector code does (keeps its signed-zero behaviour).
        let ysin2 = if poly_mask { ys } else { 0.0 };
        let ysin1 = if poly_mask { 0.0 } else { yc };
        let ys = ys - ysin2;
        let yc = yc - ysin1;
        let s = f32::from_bits((ysin1 + ysin2).to_bits() ^ sign_sin);
        let c = f32::from_bits((yc + ys).to_bits() ^ sign_cos);
        (s, c)
    }
}

/// Formats a double as C++ `std::ostream << double` does by default (`%g`, 6 significant digits):
/// `-1`, `2.2`, `1e-07`, `3e+38`, `inf`, `nan`. PyTorch's C++ error messages print numbers this way.
pub(crate) fn fmt_g(x: f64) -> String {
    const PRECISION: i32 = 6;
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // The decimal exponent after rounding to 6 significant digits decides the style.
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..PRECISION).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_fraction_zeros(mantissa), exp.abs())
    } else {
        let fixed = format!("{:.*}", (PRECISION - 1 - exp) as usize, x);
        strip_fraction_zeros(&fixed).to_string()
    }
}

/// `%g` drops trailing zeros of the fraction, and the point if nothing is left after it.
fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// The generator plugs into the `rand` ecosystem: `rand::RngExt` methods, distributions and
/// shuffles draw from the same MT19937 stream PyTorch's CPU generator produces.
impl rand_core::TryRng for Generator {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(Generator::next_u32(self))
    }

    /// PyTorch's `random64()`: two outputs, the first in the high half.
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(Generator::next_u64(self))
    }

    /// Bytes of successive 32-bit outputs, little-endian (the last output's unused bytes are
    /// dropped).
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(4) {
            let bytes = Generator::next_u32(self).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// Seeding as `torch.manual_seed`: [`seed_from_u64(s)`](rand_core::SeedableRng::seed_from_u64)
/// is [`Generator::new(s)`](Generator::new); a byte seed is a little-endian `u64`.
impl rand_core::SeedableRng for Generator {
    type Seed = [u8; 8];

    fn from_seed(seed: [u8; 8]) -> Self {
        Generator::new(u64::from_le_bytes(seed))
    }

    fn seed_from_u64(state: u64) -> Self {
        Generator::new(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_g_matches_cpp_stream() {
        let cases = [
            (2.2, "2.2"),
            (1.2, "1.2"),
            (-1.0, "-1"),
            (1e-7, "1e-07"),
            (3e38, "3e+38"),
            (-3e38, "-3e+38"),
            (0.0001, "0.0001"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (0.5773502691896257, "0.57735"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
        ];
        for (x, want) in cases {
            assert_eq!(fmt_g(x), want, "{x}");
        }
    }

    #[test]
    fn cephes_port_is_accurate() {
        // Not a parity check: the port should be within a few ulps of the true functions.
        for i in 1..=1000 {
            let u = i as f32 / 1000.0;
            assert!(
                (cephes::log(u) as f64 - (u as f64).ln()).abs() < 1e-6,
                "log {u}"
            );
            let t = u * (2.0 * PI) as f32;
            let (s, c) = cephes::sincos(t);
            assert!((s as f64 - (t as f64).sin()).abs() < 1e-6, "sin {t}");
            assert!((c as f64 - (t as f64).cos()).abs() < 1e-6, "cos {t}");
        }
        assert!(cephes::log(0.0).is_nan());
    }
}
