//! Host-side layouts the kernels want. Everything on the device is stored in vec4 units with
//! zero padding, so the kernels' inner loops need no bounds checks:
//! activations `[rows, ceil(width/4)·4]`; weights in storage buffers transposed to `[in, out]`
//! and padded to whole tiles ([`weight_transposed_padded`]); weights in textures in panels of
//! 32 outputs ([`PanelLayout`]).

use std::borrow::Cow;

use crate::model::Linear;

/// `ceil(n / 4)`: vec4s per row of a width-`n` activation.
pub(crate) fn vec4s(n: usize) -> usize {
    n.div_ceil(4)
}

/// Columns of the packed weight: `out` rounded up to a multiple of 8.
pub(crate) fn weight_cols(out: usize) -> usize {
    out.div_ceil(8) * 8
}

/// Rows of width `cols` laid out with row stride `4·ceil(cols/4)`, zero-padded. Borrows when no
/// padding is needed.
pub(crate) fn pad_rows(data: &[f32], rows: usize, cols: usize) -> Cow<'_, [f32]> {
    let stride = vec4s(cols) * 4;
    if stride == cols {
        return Cow::Borrowed(data);
    }
    let mut out = vec![0.0f32; rows * stride];
    for (dst, src) in out.chunks_exact_mut(stride).zip(data.chunks_exact(cols)) {
        dst[..cols].copy_from_slice(src);
    }
    Cow::Owned(out)
}

/// Appends the first `rows` rows of `[rows, 4·ceil(cols/4)]` data to `out`, without the padding.
pub(crate) fn unpad_rows_into(data: &[f32], rows: usize, cols: usize, out: &mut Vec<f32>) {
    let stride = vec4s(cols) * 4;
    if stride == cols {
        out.extend_from_slice(&data[..rows * cols]);
        return;
    }
    for r in data.chunks_exact(stride).take(rows) {
        out.extend_from_slice(&r[..cols]);
    }
}

/// Writes the first `rows` rows of `[rows, 4·ceil(cols/4)]` data into `out` (exactly
/// `rows · cols` values), without the padding.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn unpad_rows_to_slice(data: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    let stride = vec4s(cols) * 4;
    if stride == cols {
        out.copy_from_slice(&data[..rows * cols]);
        return;
    }
    for (o, r) in out.chunks_exact_mut(cols).zip(data.chunks_exact(stride)) {
        o.copy_from_slice(&r[..cols]);
    }
}

/// The weight `[out, in]` transposed to `[in, out]`, zero-padded to multiples of
/// `row_pad` × `col_pad` (each a multiple of 4).
pub(crate) fn weight_transposed_padded(
    linear: &Linear,
    row_pad: usize,
    col_pad: usize,
) -> Vec<f32> {
    let n_in = linear.in_features();
    let rows = n_in.next_multiple_of(row_pad);
    let cols = linear.out_features().next_multiple_of(col_pad);
    let mut out = vec![0.0f32; rows * cols];
    for (o, row) in linear.weight().chunks_exact(n_in).enumerate() {
        for (i, &w) in row.iter().enumerate() {
            out[i * cols + o] = w;
        }
    }
    out
}

/// The bias padded to `weight_cols(out)` (zeros when the layer has none).
pub(crate) fn bias_padded(linear: &Linear) -> Vec<f32> {
    let mut out = vec![0.0f32; weight_cols(linear.out_features())];
    if let Some(b) = linear.bias() {
        out[..b.len()].copy_from_slice(b);
    }
    out
}

/// Bytes of `n` f32 values.
pub(crate) fn f32_bytes(n: usize) -> u64 {
    (n as u64) * 4
}

/// Texels of one panel row segment: a panel covers 8 texels (32 output columns), one SIMD batch
/// of invocations on software adapters.
pub(crate) const PANEL_TEXELS: usize = 8;

/// How the windowed kernel's weight texture is laid out: **panels** of [`PANEL_TEXELS`] output texels,
/// each storing its k-steps one after another, so the invocations that run together read one
/// contiguous stream of memory through the k loop. (With the plain `[in, out]` layout each step
/// moved a whole texture row on, 16 KiB for 1,024 outputs: every fetch a new page the CPU's
/// prefetchers did not follow, and llvmpipe stalled on those misses; docs/KERNELS.md.)
///
/// Texel of output texel `c` (outputs 4c..4c+3), k-step `s` (inputs 4s..4s+3), sub-row `j`:
/// `x = (s mod S)·32 + 8j + (c mod 8)`, `y = (c / 8)·R + s / S`, where a texture row holds
/// S steps and a panel R rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PanelLayout {
    /// k-steps (4 inputs each) per texture row: S, a power of two.
    pub(crate) steps_per_row: usize,
    /// Texture rows per panel: R = ceil(k4 / S).
    pub(crate) panel_rows: usize,
    /// Panels: ceil(texels / 8).
    pub(crate) panels: usize,
}

impl PanelLayout {
    /// The layout for a Linear(`n_in`, `n_out`) on a device whose textures are at most `max_dim`
    /// texels a side, or `None` when it does not fit. S is the smallest that fits, so the padding
    /// of the last texture row of each panel stays small.
    pub(crate) fn new(n_in: usize, n_out: usize, max_dim: usize) -> Option<Self> {
        let k4 = vec4s(n_in);
        let panels = (weight_cols(n_out) / 4).div_ceil(PANEL_TEXELS);
        let mut s = 1;
        while 4 * PANEL_TEXELS * s <= max_dim {
            let rows = k4.div_ceil(s);
            if panels * rows <= max_dim {
                return Some(Self {
                    steps_per_row: s,
                    panel_rows: rows,
                    panels,
                });
            }
            s *= 2;
        }
        None
    }

    /// Texels per texture row.
    pub(crate) fn width(&self) -> usize {
        4 * PANEL_TEXELS * self.steps_per_row
    }

    /// Texture rows.
    pub(crate) fn height(&self) -> usize {
        self.panels * self.panel_rows
    }
}

/// The weight of `linear` as the texels of `layout`, 4 f32 per texel, row-major; zeros where no
/// weight falls (padding outputs, inputs past `in`, the tail of each panel's last row).
pub(crate) fn weight_panels(linear: &Linear, layout: &PanelLayout) -> Vec<f32> {
    let n_in = linear.in_features();
    let width = layout.width();
    let mut out = vec![0.0f32; width * layout.height() * 4];
    for (o, row) in linear.weight().chunks_exact(n_in).enumerate() {
        let c = o / 4;
        let panel_row0 = (c / PANEL_TEXELS) * layout.panel_rows;
        for (i, &w) in row.iter().enumerate() {
            let (s, j) = (i / 4, i % 4);
            let x = (s % layout.steps_per_row) * 4 * PANEL_TEXELS + j * PANEL_TEXELS + c % 8;
            let y = panel_row0 + s / layout.steps_per_row;
            out[(y * width + x) * 4 + o % 4] = w;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_layout_picks_the_smallest_row_that_fits() {
        // Linear(1024, 1024): 32 panels × 256 steps fit 8,192 rows with one step per row.
        let l = PanelLayout::new(1024, 1024, 8192).unwrap();
        assert_eq!((l.steps_per_row, l.panel_rows, l.panels), (1, 256, 32));
        assert_eq!((l.width(), l.height()), (32, 8192));
        // Linear(4096, 4096): 128 panels × 1,024 steps need 16 steps per row.
        let l = PanelLayout::new(4096, 4096, 8192).unwrap();
        assert_eq!(
            (l.steps_per_row, l.panel_rows, l.width(), l.height()),
            (16, 64, 512, 8192)
        );
        // Linear(3, 1): one panel, one step.
        let l = PanelLayout::new(3, 1, 2048).unwrap();
        assert_eq!((l.width(), l.height()), (32, 1));
        // Over max_dim² texels in all: no layout.
        assert_eq!(PanelLayout::new(1 << 16, 1 << 16, 2048), None);
    }

    #[test]
    fn weight_panels_puts_each_weight_at_its_texel() {
        let (n_in, n_out) = (9, 37); // 3 k-steps, 10 texels: 2 panels
        let w: Vec<f32> = (0..n_in * n_out).map(|v| v as f32 + 1.0).collect();
        let linear = Linear::new(n_in, n_out, w.clone(), None).unwrap();
        let layout = PanelLayout {
            steps_per_row: 2,
            panel_rows: 2,
            panels: 2,
        };
        let t = weight_panels(&linear, &layout);
        assert_eq!(t.len(), 64 * 4 * 4);
        let at = |x: usize, y: usize, lane: usize| t[(y * 64 + x) * 4 + lane];
        // o = 36 (texel 9: panel 1, lane 1, component 0), i = 8 (step 2: row 1 of the panel, j 0).
        assert_eq!(at(1, 3, 0), w[36 * n_in + 8]);
        // o = 5 (texel 1, component 1), i = 6 (step 1, j 2).
        assert_eq!(at(32 + 16 + 1, 0, 1), w[5 * n_in + 6]);
        // Every weight appears once; the rest is zero padding.
        let nonzero: Vec<f32> = t.iter().copied().filter(|&v| v != 0.0).collect();
        assert_eq!(nonzero.len(), w.len());
    }
}
