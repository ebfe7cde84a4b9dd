//! A bar chart of measured speedup against the oracle bound, per workload, as SVG.
//!
//! Written by hand: a grouped bar chart is a few dozen lines of SVG, while a plotting crate's
//! text layout needs a font backend on the machine.

use crate::bench::Row;
use std::fmt::Write;

/// The chart for the rows of the largest thread count measured.
pub(crate) fn chart(rows: &[Row]) -> String {
    let p = rows.iter().map(|r| r.threads).max().unwrap_or(1);
    let rows: Vec<&Row> = rows.iter().filter(|r| r.threads == p).collect();
    let (left, top, bar, gap, height) = (60.0, 40.0, 22.0, 18.0, 260.0);
    let width = (left + rows.len() as f64 * (2.0 * bar + gap) + 20.0).max(480.0);
    let max = rows.iter().map(|r| r.fig.bound.max(r.fig.speedup)).fold(1.0, f64::max).ceil();
    let y = |v: f64| top + height - v / max * height;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="20" font-size="13">speedup (blue) against oracle bound (grey), P = {p}</text>
"#,
        w = width,
        h = top + height + 90.0
    );
    let step = if max > 8.0 { 2.0 } else { 0.5 };
    let mut tick = 0.0;
    while tick <= max {
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{x2}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{tx}" y="{ty}" text-anchor="end">{tick:.1}x</text>"##,
            x2 = width - 10.0,
            y = y(tick),
            tx = left - 6.0,
            ty = y(tick) + 4.0
        );
        tick += step;
    }
    for (i, r) in rows.iter().enumerate() {
        let x = left + gap / 2.0 + i as f64 * (2.0 * bar + gap);
        let _ = writeln!(
            s,
            r##"<rect x="{x}" y="{yb}" width="{bar}" height="{hb}" fill="#bbb"><title>bound {b:.2}x</title></rect>"##,
            yb = y(r.fig.bound),
            hb = top + height - y(r.fig.bound),
            b = r.fig.bound
        );
        let _ = writeln!(
            s,
            r##"<rect x="{xs}" y="{ys}" width="{bar}" height="{hs}" fill="#3b6fb6"><title>speedup {v:.2}x</title></rect>"##,
            xs = x + bar,
            ys = y(r.fig.speedup),
            hs = top + height - y(r.fig.speedup),
            v = r.fig.speedup
        );
        let _ = writeln!(
            s,
            r#"<text x="{cx}" y="{ly}" text-anchor="end" transform="rotate(-40 {cx} {ly})">{name}</text>"#,
            cx = x + bar,
            ly = top + height + 14.0,
            name = r.workload
        );
    }
    s.push_str("</svg>\n");
    s
}
