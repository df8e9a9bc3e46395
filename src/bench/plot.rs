//! The throughput plot: GFLOP/s (log scale) against batch size (mnist) and GEMM size, one line per
//! path, so the point where the GPU overtakes the CPU (if it does) is visible; a third panel for
//! the training step (`train`) when the run has it. Hand-written SVG.

use std::fmt::Write as _;

use crate::bench::report::{BenchPath, Report};

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 490.0;
const MARGIN_L: f64 = 72.0;
const MARGIN_R: f64 = 24.0;
const TOP: f64 = 96.0;
const BOTTOM: f64 = HEIGHT - 98.0;

fn style(path: BenchPath) -> (&'static str, &'static str, &'static str) {
    // colour, dash pattern, legend text
    match path {
        BenchPath::CpuReference => ("#7f7f7f", "5 4", "cpu-reference (f64 loops)"),
        BenchPath::CpuFast => ("#1f77b4", "", "cpu-fast (CpuMlp)"),
        BenchPath::GpuE2e => ("#d62728", "", "gpu-e2e (upload, run, read)"),
        BenchPath::GpuResident => ("#ff7f0e", "7 4", "gpu-resident (on device)"),
    }
}

/// One panel: a workload's figures, x = batch (mnist) or size (gemm).
struct Panel {
    title: &'static str,
    x_label: &'static str,
    /// (path, [(x, GFLOP/s)]) sorted by x.
    series: Vec<(BenchPath, Vec<(f64, f64)>)>,
}

fn panel(report: &Report, workload: &str, title: &'static str, x_label: &'static str) -> Panel {
    let series = BenchPath::ALL
        .into_iter()
        .map(|p| {
            let mut pts: Vec<(f64, f64)> = report
                .records
                .iter()
                .filter(|r| r.workload == workload && r.path == p)
                .filter_map(|r| {
                    let x = r.size.unwrap_or(r.batch) as f64;
                    r.gflops().filter(|g| *g > 0.0).map(|g| (x, g))
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (p, pts)
        })
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    Panel {
        title,
        x_label,
        series,
    }
}

/// Draws the report's mnist and gemm figures (and the train step's, when there are any) as an
/// SVG document.
pub fn svg(report: &Report) -> String {
    let mut panels = vec![
        panel(
            report,
            "mnist",
            "mnist MLP (784→512→512→10)",
            "batch size (rows)",
        ),
        panel(report, "gemm", "gemm: one Linear, M = N = K", "M = N = K"),
    ];
    if report.records.iter().any(|r| r.workload == "train") {
        panels.push(panel(
            report,
            "train",
            "train step (784→512→512→10, SGD)",
            "batch size (rows)",
        ));
    }
    let panel_w = WIDTH / panels.len() as f64;
    let all: Vec<f64> = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|(_, s)| s.iter().map(|pt| pt.1)))
        .collect();
    let (lo, hi) = if all.is_empty() {
        (0, 1)
    } else {
        let min = all.iter().copied().fold(f64::INFINITY, f64::min);
        let max = all.iter().copied().fold(0.0, f64::max);
        let lo = min.log10().floor() as i32;
        let hi = (max.log10().ceil() as i32).max(lo + 1);
        (lo, hi)
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">\
         {}, GFLOP/s (log scale; higher is better)</text>",
        WIDTH / 2.0,
        if panels.len() > 2 {
            "Throughput of the forward pass and the training step"
        } else {
            "Forward-pass throughput"
        }
    );
    // Legend, one row.
    let mut lx = 40.0;
    for p in BenchPath::ALL {
        let (colour, dash, text) = style(p);
        let _ = writeln!(
            s,
            "<line x1=\"{lx}\" y1=\"50\" x2=\"{}\" y2=\"50\" stroke=\"{colour}\" stroke-width=\"2.5\" \
             stroke-dasharray=\"{dash}\"/><circle cx=\"{}\" cy=\"50\" r=\"3.5\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"54\">{}</text>",
            lx + 28.0,
            lx + 14.0,
            lx + 34.0,
            esc(text)
        );
        lx += 240.0;
    }
    for (i, p) in panels.iter().enumerate() {
        draw_panel(&mut s, p, i as f64 * panel_w, panel_w, lo, hi);
    }
    let gpu = match (&report.adapter, &report.adapter_error) {
        (Some(a), _) => format!("{} ({}, {})", a.name, a.backend, a.device_type),
        (None, Some(_)) => "none found".to_string(),
        (None, None) => "not used".to_string(),
    };
    let soft = if report
        .adapter
        .as_ref()
        .is_some_and(|a| a.device_type == "Cpu")
    {
        " · a software adapter: the \"GPU\" runs on the same CPU cores"
    } else {
        ""
    };
    let captions = [
        format!(
            "GPU: {gpu} · CPU: {}, {} threads",
            report.cpu, report.threads
        ),
        format!("wgpu-mlp {} · {}{soft}", report.crate_version, report.date),
    ];
    for (i, caption) in captions.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#444\">{}</text>",
            WIDTH / 2.0,
            HEIGHT - 28.0 + 16.0 * i as f64,
            esc(caption)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn draw_panel(s: &mut String, p: &Panel, x0: f64, panel_w: f64, lo: i32, hi: i32) {
    let left = x0 + MARGIN_L;
    let right = x0 + panel_w - MARGIN_R;
    let y_of = |g: f64| BOTTOM - (g.log10() - f64::from(lo)) / f64::from(hi - lo) * (BOTTOM - TOP);
    let mut xs: Vec<f64> = p
        .series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|pt| pt.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (xmin, xmax) = match (xs.first(), xs.last()) {
        (Some(&a), Some(&b)) if b > a => (a.log2(), b.log2()),
        (Some(&a), _) => (a.log2() - 1.0, a.log2() + 1.0),
        _ => (0.0, 1.0),
    };
    let pad = (right - left) * 0.07;
    let x_of = |x: f64| left + pad + (x.log2() - xmin) / (xmax - xmin) * (right - left - 2.0 * pad);

    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\">{}</text>",
        (left + right) / 2.0,
        TOP - 12.0,
        esc(p.title)
    );
    // Grid and y ticks at each decade.
    for d in lo..=hi {
        let y = y_of(10f64.powi(d));
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 4.0,
            decade(d)
        );
    }
    // x ticks at each measured value.
    for &x in &xs {
        let px = x_of(x);
        let _ = writeln!(
            s,
            "<line x1=\"{px:.1}\" y1=\"{BOTTOM}\" x2=\"{px:.1}\" y2=\"{}\" stroke=\"#000\"/>\
             <text x=\"{px:.1}\" y=\"{}\" text-anchor=\"middle\">{x}</text>",
            BOTTOM + 5.0,
            BOTTOM + 19.0
        );
    }
    // Axes.
    let _ = writeln!(
        s,
        "<polyline points=\"{left},{TOP} {left},{BOTTOM} {right},{BOTTOM}\" fill=\"none\" \
         stroke=\"#000\"/>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        (left + right) / 2.0,
        BOTTOM + 40.0,
        esc(p.x_label)
    );
    let (cx, cy) = (x0 + 18.0, (TOP + BOTTOM) / 2.0);
    let _ = writeln!(
        s,
        "<text x=\"{cx}\" y=\"{cy}\" text-anchor=\"middle\" transform=\"rotate(-90 {cx} {cy})\">\
         GFLOP/s</text>"
    );
    if p.series.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no data in this run</text>",
            (left + right) / 2.0,
            (TOP + BOTTOM) / 2.0
        );
    }
    for (path, pts) in &p.series {
        let (colour, dash, _) = style(*path);
        let points: Vec<String> = pts
            .iter()
            .map(|&(x, g)| format!("{:.1},{:.1}", x_of(x), y_of(g)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline class=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"2.5\" stroke-dasharray=\"{dash}\"/>",
            path.name(),
            points.join(" ")
        );
        for &(x, g) in pts {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{colour}\"><title>{} at {x}: \
                 {} GFLOP/s</title></circle>",
                x_of(x),
                y_of(g),
                path.name(),
                crate::bench::report::sig(g)
            );
        }
    }
}

/// `10^d` as a plain number: `0.01`, `1`, `1000`.
fn decade(d: i32) -> String {
    if d >= 0 {
        format!("{}", 10u64.pow(d as u32))
    } else {
        format!("{:.*}", (-d) as usize, 10f64.powi(d))
    }
}

/// Escapes text for XML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
