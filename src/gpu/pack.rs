//! Host-side layouts the kernels want. Everything on the device is stored in vec4 units with
//! zero padding, so the kernels' inner loops need no bounds checks:
//! activations `[rows, ceil(width/4)·4]`, weights transposed to `[in, out]` with `in` padded to a
//! multiple of 4 and `out` to a multiple of 8 (one Linear invocation covers 8 columns).

use std::borrow::Cow;

use crate::layer::Linear;

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

/// [`unpad_rows_into`] a new vector.
pub(crate) fn unpad_rows(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * cols);
    unpad_rows_into(data, rows, cols, &mut out);
    out
}

/// The weight `[out, in]` transposed to `[4·ceil(in/4), weight_cols(out)]`, zero-padded.
pub(crate) fn weight_transposed(linear: &Linear) -> Vec<f32> {
    weight_transposed_padded(linear, 4, 8)
}

/// Rows × columns of the transposed weight padded to multiples of `pad` (in, out).
pub(crate) fn padded_weight_shape(linear: &Linear, pad: (usize, usize)) -> (usize, usize) {
    (
        linear.in_features().next_multiple_of(pad.0),
        linear.out_features().next_multiple_of(pad.1),
    )
}

/// The weight `[out, in]` transposed to `[in, out]`, zero-padded to multiples of
/// `row_pad` × `col_pad` (each a multiple of 4).
pub(crate) fn weight_transposed_padded(
    linear: &Linear,
    row_pad: usize,
    col_pad: usize,
) -> Vec<f32> {
    let n_in = linear.in_features();
    let (rows, cols) = padded_weight_shape(linear, (row_pad, col_pad));
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
