//! Small SVG line charts, self-contained and deterministic (the same data gives the same
//! bytes): training curves (`wgpu-mlp train --plot`) and the primer report's figures.
//!
//! ```
//! use wgpu_mlp::chart::{Chart, Series, svg};
//! let loss = Chart::new("loss", "epoch", "loss")
//!     .series(Series::new("train", vec![(1.0, 0.9), (2.0, 0.5), (3.0, 0.4)]));
//! let page = svg(&[loss]);
//! assert!(page.starts_with("<svg") && page.contains("train"));
//! ```

use std::fmt::Write as _;

/// Colours of the series, in order (colour-blind-safe palette).
const COLOURS: [&str; 8] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442",
];
/// One chart's size in pixels.
const W: f64 = 420.0;
const H: f64 = 280.0;
/// Margins: left (tick labels), right, top (title), bottom (axis label).
const ML: f64 = 62.0;
const MR: f64 = 12.0;
const MT: f64 = 28.0;
const MB: f64 = 40.0;

/// One line: a name for the legend and its points `(x, y)`; non-finite points are skipped
/// (the line joins their neighbours).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (e.g. validation against training).
    pub dashed: bool,
}

impl Series {
    /// A solid line.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            dashed: false,
        }
    }

    /// The same line dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

/// A line chart: a title, axis labels and its series.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// The title above the plot.
    pub title: String,
    /// The x axis label.
    pub x_label: String,
    /// The y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// A base-10 logarithmic y axis (points with y ≤ 0 are skipped).
    pub log_y: bool,
}

impl Chart {
    /// An empty chart.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            log_y: false,
        }
    }

    /// Adds a line.
    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    /// A logarithmic y axis.
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// The points as drawn (y as log10 on a log axis), the unusable ones dropped.
    fn drawn(&self, s: &Series) -> Vec<(f64, f64)> {
        s.points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || *y > 0.0))
            .map(|&(x, y)| (x, if self.log_y { y.log10() } else { y }))
            .collect()
    }

    /// The chart at offset `(ox, oy)`, as SVG elements.
    fn draw(&self, out: &mut String, ox: f64, oy: f64) {
        let pts: Vec<(f64, f64)> = self.series.iter().flat_map(|s| self.drawn(s)).collect();
        let (mut x0, mut x1) = bounds(pts.iter().map(|p| p.0));
        let (mut y0, mut y1) = bounds(pts.iter().map(|p| p.1));
        if x0 == x1 {
            (x0, x1) = (x0 - 1.0, x1 + 1.0);
        }
        if y0 == y1 {
            (y0, y1) = (y0 - 1.0, y1 + 1.0);
        }
        let (y0, y1) = if self.log_y {
            (y0.floor(), y1.ceil())
        } else {
            let pad = (y1 - y0) * 0.05;
            (y0 - pad, y1 + pad)
        };
        let (pw, ph) = (W - ML - MR, H - MT - MB);
        let sx = |x: f64| ox + ML + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| oy + MT + (1.0 - (y - y0) / (y1 - y0)) * ph;
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n\
             <rect x=\"{}\" y=\"{}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>\n",
            f(ox + W / 2.0),
            f(oy + 18.0),
            esc(&self.title),
            f(ox + ML),
            f(oy + MT),
        );
        for t in ticks(x0, x1) {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
                f(sx(t)),
                f(oy + MT + ph + 13.0),
                label(t)
            );
        }
        let yt = if self.log_y {
            (y0 as i64..=y1 as i64).map(|e| e as f64).collect()
        } else {
            ticks(y0, y1)
        };
        for t in yt {
            let text = if self.log_y {
                format!("1e{}", t as i64)
            } else {
                label(t)
            };
            let _ = writeln!(
                out,
                "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#ddd\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{text}</text>",
                f(ox + ML),
                f(ox + ML + pw),
                f(ox + ML - 4.0),
                f(sy(t) + 3.0),
                y = f(sy(t)),
            );
        }
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" \
             transform=\"rotate(-90 {} {})\">{}</text>\n",
            f(ox + ML + pw / 2.0),
            f(oy + H - 8.0),
            esc(&self.x_label),
            f(ox + 12.0),
            f(oy + MT + ph / 2.0),
            f(ox + 12.0),
            f(oy + MT + ph / 2.0),
            esc(&self.y_label),
        );
        // The legend (one line per series) goes over the lines, on a pale box as wide as the
        // longest name, at the right: top, middle or bottom, whichever covers fewest points.
        let lh = 13.0 * self.series.len() as f64 + 6.0;
        let longest = self.series.iter().map(|s| s.name.chars().count()).max();
        let lw = 28.0 + 6.2 * longest.unwrap_or(0) as f64;
        let left = ox + ML + pw - lw;
        let covered = |top: f64| {
            pts.iter()
                .filter(|&&(x, y)| {
                    let (px, py) = (sx(x), sy(y));
                    px >= left - 4.0 && py >= top - 4.0 && py <= top + lh + 4.0
                })
                .count()
        };
        let places = [
            oy + MT + 2.0,
            oy + MT + (ph - lh) / 2.0,
            oy + MT + ph - lh - 2.0,
        ];
        let ly0 = places
            .iter()
            .copied()
            .min_by_key(|&t| covered(t))
            .unwrap_or(places[0]);
        let mut legend = format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"white\" \
             fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n",
            f(left),
            f(ly0),
            f(lw),
            f(lh)
        );
        for (i, s) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let path: Vec<String> = self
                .drawn(s)
                .iter()
                .map(|&(x, y)| format!("{},{}", f(sx(x)), f(sy(y))))
                .collect();
            let dash = if s.dashed {
                " stroke-dasharray=\"5,3\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.6\"{dash} \
                 points=\"{}\"/>",
                path.join(" ")
            );
            let ly = ly0 + 12.0 + 13.0 * i as f64;
            let lx = left + 4.0;
            let _ = writeln!(
                legend,
                "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{colour}\" \
                 stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>",
                f(lx),
                f(lx + 16.0),
                f(ly - 3.0),
                f(ly - 3.0),
                f(lx + 20.0),
                f(ly),
                esc(&s.name)
            );
        }
        out.push_str(&legend);
    }
}

/// The SVG document of `charts`, side by side, two per row.
pub fn svg(charts: &[Chart]) -> String {
    let cols = charts.len().clamp(1, 2);
    let rows = charts.len().div_ceil(2).max(1);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n",
        f(W * cols as f64),
        f(H * rows as f64)
    );
    for (i, c) in charts.iter().enumerate() {
        c.draw(&mut out, W * (i % 2) as f64, H * (i / 2) as f64);
    }
    out.push_str("</svg>\n");
    out
}

/// The smallest and largest value (0, 1 when there are none).
fn bounds(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// About five round tick values within `[lo, hi]`: integer multiples of 1, 2 or 5 × 10ᵏ,
/// each computed from its integer (no accumulated rounding: 0.6, not 0.6000000000000001).
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 5.0;
    let k = raw.log10().floor() as i32;
    let m = [1i64, 2, 5, 10]
        .into_iter()
        .find(|m| *m as f64 * 10f64.powi(k) >= raw)
        .unwrap_or(10);
    // The value of n steps: n·m·10ᵏ, divided rather than multiplied for negative k.
    let at = |n: i64| {
        if k < 0 {
            (n * m) as f64 / 10f64.powi(-k)
        } else {
            (n * m) as f64 * 10f64.powi(k)
        }
    };
    let step = m as f64 * 10f64.powi(k);
    let mut n = (lo / step).ceil() as i64;
    let mut out = Vec::new();
    while at(n) <= hi + step * 1e-9 && out.len() < 20 {
        out.push(at(n));
        n += 1;
    }
    out
}

/// A tick label: up to 4 significant digits, no trailing zeros.
fn label(v: f64) -> String {
    let s = format!("{:.4}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// A coordinate with one decimal.
fn f(v: f64) -> String {
    format!("{v:.1}")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(ticks(0.0, 1.0), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        let t = ticks(0.13, 0.87);
        assert!(t.iter().all(|v| (0.13..=0.87).contains(v)) && t.len() >= 3);
    }

    #[test]
    fn the_same_data_gives_the_same_bytes_and_skips_nan() {
        let c = Chart::new("a<b", "x", "y")
            .series(Series::new(
                "s",
                vec![(1.0, 2.0), (2.0, f64::NAN), (3.0, 1.0)],
            ))
            .log_y();
        let a = svg(std::slice::from_ref(&c));
        assert_eq!(a, svg(&[c]));
        assert!(a.contains("a&lt;b") && !a.contains("NaN"));
    }
}
