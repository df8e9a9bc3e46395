//! The digits demo's input: a drawing on the page's canvas made into the 8×8 image the model was
//! trained on (scikit-learn's `load_digits()`, web/model/).
//!
//! How those images were made (the UCI "optdigits" preprocessing): each handwritten digit was
//! normalised into a 32×32 bitmap, which was cut into 4×4 blocks; a pixel of the 8×8 image is the
//! number of inked bitmap pixels in its block, 0..16. In the data set every digit spans all eight
//! rows (its height fills the box) and about six columns, centred (columns 0 and 7 are mostly
//! empty, and even a "1" is three to five columns wide).
//!
//! [`digit_pixels`] does the same with a drawing:
//!
//! 1. the ink of a pixel is its alpha (the page draws on a transparent canvas);
//! 2. the bounding box of the ink (pixels at least [`INK_THRESHOLD`] opaque) is mapped onto the
//!    32×32 box: its height onto all 32 rows; its width, at the same scale, onto a centred span
//!    held between [`MIN_WIDTH`] and [`MAX_WIDTH`] columns (so a thin "1" widens as the data set's
//!    do, and a wide scrawl narrows);
//! 3. each of the 32×32 cells takes the mean ink of the drawing's pixels under it (area
//!    sampling), and each 4×4 block sums its 16 cells: a value in 0..16, as in the data set,
//!    with anti-aliased edges counting in proportion rather than all or nothing.
//!
//! Checked against the held-out samples of web/model/heldout.json: drawn back onto a canvas as
//! filled bands of ink (by web/tests/browser.rs with pixels, by web/e2e/page.test.mjs with the
//! mouse), each comes back within a few units per pixel and is classified as PyTorch does.

/// Side of the model's image.
pub const SIDE: usize = 8;
/// Side of the bitmap the data set's images were counted from.
const BOX: usize = 32;
/// Bitmap pixels per image pixel along each side.
const BLOCK: usize = BOX / SIDE;
/// A pixel belongs to the drawing's bounding box from this alpha on (0..1): faint anti-aliasing
/// at a stroke's rim does not widen the box.
pub const INK_THRESHOLD: f32 = 0.2;
/// The narrowest span, in bitmap columns, a drawing is stretched to (the data set's "1"s are
/// three to five image columns wide).
pub const MIN_WIDTH: f64 = 14.0;
/// The widest span, in bitmap columns (the data set's digits use about columns 1 to 6).
pub const MAX_WIDTH: f64 = 24.0;
/// The largest canvas side accepted (a guard against absurd sizes, not a real limit).
pub const MAX_SIDE: usize = 8192;

/// The 8×8 image (row-major, values 0..16) of a drawing given as RGBA pixels (`width × height`
/// of them, 4 bytes each, as `ImageData.data`). An empty drawing gives zeros. A buffer whose
/// length does not match the size is an error.
pub fn digit_pixels(rgba: &[u8], width: usize, height: usize) -> Result<[f32; 64], String> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "the drawing is {width}×{height} pixels; each side must be 1 to {MAX_SIDE}"
        ));
    }
    let n = width * height;
    if rgba.len() != n * 4 {
        return Err(format!(
            "a {width}×{height} drawing has {} RGBA bytes, not {}",
            n * 4,
            rgba.len()
        ));
    }
    let ink: Vec<f32> = rgba
        .chunks_exact(4)
        .map(|p| f32::from(p[3]) / 255.0)
        .collect();
    Ok(pixels_from_ink(&ink, width, height))
}

/// [`digit_pixels`] on ink values in 0..1 (`width × height`, row-major).
pub fn pixels_from_ink(ink: &[f32], width: usize, height: usize) -> [f32; 64] {
    let mut out = [0.0f32; 64];
    let Some((x0, y0, x1, y1)) = bounding_box(ink, width, height) else {
        return out;
    };
    let (bw, bh) = ((x1 - x0) as f64, (y1 - y0) as f64);
    // Height onto the 32 rows; width at the same scale, held to [MIN_WIDTH, MAX_WIDTH], centred.
    let sy = BOX as f64 / bh;
    let span = (bw * sy).clamp(MIN_WIDTH, MAX_WIDTH);
    let sx = span / bw;
    let left = (BOX as f64 - span) / 2.0;
    let sums = SummedArea::new(ink, width, height);
    let mut cells = [[0.0f64; BOX]; BOX];
    for (i, row) in cells.iter_mut().enumerate() {
        // The drawing's rows under bitmap row i.
        let ya = y0 as f64 + i as f64 / sy;
        let yb = y0 as f64 + (i + 1) as f64 / sy;
        for (j, cell) in row.iter_mut().enumerate() {
            // Only the part of bitmap column j inside the span maps onto the drawing.
            let ja = (j as f64).max(left);
            let jb = ((j + 1) as f64).min(left + span);
            if jb <= ja {
                continue;
            }
            let xa = x0 as f64 + (ja - left) / sx;
            let xb = x0 as f64 + (jb - left) / sx;
            *cell = sums.mean(xa, xb, ya, yb) * (jb - ja);
        }
    }
    for (k, v) in out.iter_mut().enumerate() {
        let (r, c) = (k / SIDE, k % SIDE);
        let mut s = 0.0;
        for row in &cells[r * BLOCK..(r + 1) * BLOCK] {
            s += row[c * BLOCK..(c + 1) * BLOCK].iter().sum::<f64>();
        }
        *v = s.clamp(0.0, 16.0) as f32;
    }
    out
}

/// `(x0, y0, x1, y1)`, ends exclusive, of the pixels with ink at least [`INK_THRESHOLD`].
fn bounding_box(ink: &[f32], width: usize, height: usize) -> Option<(usize, usize, usize, usize)> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (y, row) in ink.chunks_exact(width).take(height).enumerate() {
        for (x, &a) in row.iter().enumerate() {
            if a >= INK_THRESHOLD {
                x0 = x0.min(x);
                x1 = x1.max(x + 1);
                y0 = y0.min(y);
                y1 = y1.max(y + 1);
            }
        }
    }
    (x1 > x0 && y1 > y0).then_some((x0, y0, x1, y1))
}

/// A summed-area table: the mean of any rectangle of pixels in constant time.
struct SummedArea {
    width: usize,
    height: usize,
    /// `(width + 1) × (height + 1)`; entry (x, y) is the sum of the pixels left of x and above y.
    table: Vec<f64>,
}

impl SummedArea {
    fn new(ink: &[f32], width: usize, height: usize) -> Self {
        let w1 = width + 1;
        let mut table = vec![0.0f64; w1 * (height + 1)];
        for y in 0..height {
            let mut row = 0.0;
            for x in 0..width {
                row += f64::from(ink[y * width + x]);
                table[(y + 1) * w1 + x + 1] = table[y * w1 + x + 1] + row;
            }
        }
        SummedArea {
            width,
            height,
            table,
        }
    }

    /// Sum of the pixels in `[x0, x1) × [y0, y1)` (integer corners inside the image).
    fn sum(&self, x0: usize, x1: usize, y0: usize, y1: usize) -> f64 {
        let w1 = self.width + 1;
        self.table[y1 * w1 + x1] - self.table[y0 * w1 + x1] - self.table[y1 * w1 + x0]
            + self.table[y0 * w1 + x0]
    }

    /// Mean ink over the real rectangle `[xa, xb) × [ya, yb)`: every pixel it touches, weighted
    /// by how much of it lies inside (exact area sampling of a piecewise-constant image).
    fn mean(&self, xa: f64, xb: f64, ya: f64, yb: f64) -> f64 {
        let (w, h) = (self.width as f64, self.height as f64);
        let (xa, xb, ya, yb) = (
            xa.clamp(0.0, w),
            xb.clamp(0.0, w),
            ya.clamp(0.0, h),
            yb.clamp(0.0, h),
        );
        let area = (xb - xa) * (yb - ya);
        if area <= 0.0 {
            return 0.0;
        }
        // Weights of the first, inner and last pixel along each axis.
        let spans = |a: f64, b: f64| -> [(usize, usize, f64); 3] {
            let (fa, fb) = (a.floor() as usize, b.ceil() as usize);
            if fb - fa == 1 {
                return [(fa, fa + 1, b - a), (0, 0, 0.0), (0, 0, 0.0)];
            }
            [
                (fa, fa + 1, (fa + 1) as f64 - a),
                (fa + 1, fb - 1, 1.0),
                (fb - 1, fb, b - (fb - 1) as f64),
            ]
        };
        let mut total = 0.0;
        for (ya0, ya1, wy) in spans(ya, yb) {
            if ya1 <= ya0 || wy == 0.0 {
                continue;
            }
            for (xa0, xa1, wx) in spans(xa, xb) {
                if xa1 <= xa0 || wx == 0.0 {
                    continue;
                }
                total += wx * wy * self.sum(xa0, xa1, ya0, ya1);
            }
        }
        total / area
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// An 8×8 image drawn at `cell` pixels per image pixel: each pixel a centred horizontal band
    /// of ink whose height is its value / 16 of the cell.
    fn render(img: &[f32; 64], cell: usize) -> Vec<f32> {
        let side = SIDE * cell;
        let mut ink = vec![0.0; side * side];
        for (k, &v) in img.iter().enumerate() {
            let (r, c) = (k / SIDE, k % SIDE);
            let h = (v / 16.0 * cell as f32).round() as usize;
            let top = r * cell + (cell - h) / 2;
            for y in top..top + h {
                for x in c * cell..(c + 1) * cell {
                    ink[y * side + x] = 1.0;
                }
            }
        }
        ink
    }

    #[test]
    fn empty_and_bad_sizes() {
        assert_eq!(digit_pixels(&[0; 16], 2, 2).unwrap(), [0.0; 64]);
        assert!(digit_pixels(&[0; 15], 2, 2).is_err());
        assert!(digit_pixels(&[], 0, 2).is_err());
        assert!(digit_pixels(&[], MAX_SIDE + 1, 1).is_err());
    }

    #[test]
    fn a_full_height_six_column_image_comes_back() {
        // Columns 1..=6, all rows: the box maps onto itself (span 24 columns, centred).
        let mut img = [0.0f32; 64];
        for r in 0..8 {
            for c in 1..7 {
                img[r * 8 + c] = [16.0, 8.0, 12.0, 4.0, 16.0, 10.0][c - 1];
            }
        }
        let back = pixels_from_ink(&render(&img, 32), 256, 256);
        for k in 0..64 {
            assert!(
                (back[k] - img[k]).abs() <= 1.0,
                "pixel {k}: {} vs {}",
                back[k],
                img[k]
            );
        }
    }

    #[test]
    fn a_thin_stroke_widens_and_centres() {
        // A vertical bar 4 px wide, 100 tall: stretched to MIN_WIDTH columns, centred.
        let (w, h) = (64, 128);
        let mut ink = vec![0.0; w * h];
        for y in 10..110 {
            for x in 30..34 {
                ink[y * w + x] = 1.0;
            }
        }
        let px = pixels_from_ink(&ink, w, h);
        let total: f32 = px.iter().sum();
        assert!(
            (total - (MIN_WIDTH as f32 * 32.0) / 1.0).abs() < 1.0,
            "{total}"
        );
        for r in 0..8 {
            assert_eq!(px[r * 8], 0.0);
            assert_eq!(px[r * 8 + 7], 0.0);
            assert!(px[r * 8 + 3] > 15.9 && px[r * 8 + 4] > 15.9, "{px:?}");
        }
    }
}
