//! SVG charts drawn with `plotters`: the CDFs of a sweep's points (linear and log time axis,
//! like Figure 16 of the Raft paper), a measure against a parameter, and a single run's time
//! series (term, role timeline, commits, client latency).
//!
//! Inputs are plain numbers, so the charts are pure functions of the data: the same data give
//! the same bytes.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (900, 560);

/// One distribution: the uncensored values (any order) and the number of trials, censored
/// ones included (the CDF then stops below 1).
#[derive(Clone, Debug)]
pub struct Curve {
    pub label: String,
    pub values: Vec<f64>,
    pub n: usize,
}

/// A colour for series `i`: twelve distinct colours (none black or grey-like: black marks
/// means), then hues spaced by the golden angle at three lightnesses, so that no two of the
/// first few hundred series share a colour.
pub fn colour(i: usize) -> RGBColor {
    const P: [RGBColor; 12] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(128, 0, 0),
        RGBColor(0, 0, 128),
    ];
    if let Some(c) = P.get(i) {
        return *c;
    }
    let k = i - P.len();
    let hue = (k as f64 * 137.507_764 + 20.0) % 360.0;
    let light = [0.42, 0.58, 0.32][(k / 3) % 3];
    hsl(hue, 0.7, light)
}

/// HSL (hue in degrees, saturation and lightness in [0, 1]) to RGB.
fn hsl(h: f64, s: f64, l: f64) -> RGBColor {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    RGBColor(to(r), to(g), to(b))
}

/// A tick label as a person writes it: at most 6 significant digits, no float noise
/// (0.15000000000000002 → 0.15) and no ".0" on whole numbers (1000, not 1000.0).
pub fn tick(x: f64) -> String {
    coracle_core::text::number_text(x)
}

/// Tick labels for an axis whose key points may repeat a value (plotters' logarithmic axis
/// yields 1000 both as the last point of a decade and the first of the next): each label is
/// written once.
fn tick_once() -> impl Fn(&f64) -> String {
    let last = std::cell::RefCell::new(String::new());
    move |x: &f64| {
        let t = tick(*x);
        let mut l = last.borrow_mut();
        if *l == t {
            String::new()
        } else {
            l.clone_from(&t);
            t
        }
    }
}

type Res<T> = Result<T, String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Legends with more entries than this go in a column beside the chart instead of over it:
/// thirty point labels stacked on the plot hide the data.
const INSIDE_LEGEND_MAX: usize = 12;
/// Approximate width of one character of the 12 px legend and label font.
const CHAR_PX: u32 = 7;

/// How a legend entry is marked.
#[derive(Clone, Copy)]
enum Mark {
    Line,
    Dash,
    Dot,
    Cross,
    Block,
    Triangle,
}

/// One legend entry.
struct Entry {
    label: String,
    col: RGBColor,
    mark: Mark,
}

/// Rows of a legend column beside a chart `height` px tall.
fn legend_rows(height: u32) -> usize {
    (height.saturating_sub(40) / 16).max(4) as usize
}

/// At most this many legend columns beside a chart; further entries are summarised.
const LEGEND_COLUMNS: usize = 6;

/// Width of one legend column: as wide as the longest label, up to 520 px.
fn legend_column_width(entries: &[Entry]) -> u32 {
    let longest = entries
        .iter()
        .map(|e| e.label.chars().count() as u32)
        .max()
        .unwrap_or(0);
    (46 + CHAR_PX * longest).min(520)
}

/// `s` cut to `max` characters in the middle, where labels of one sweep differ least often
/// (`a-long-prefix/x=1` and `a-long-prefix/x=2` stay apart).
fn shorten_middle(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max || max < 3 {
        return s.to_string();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// One legend entry per series, coloured by position.
fn entries_of<'s>(labels: impl Iterator<Item = &'s str>, mark: Mark) -> Vec<Entry> {
    labels
        .enumerate()
        .map(|(i, label)| Entry {
            label: label.to_string(),
            col: colour(i),
            mark,
        })
        .collect()
}

/// The canvas for a chart of `base` size with `entries` in its legend, and the width of the
/// legend block beside it (`None`: the legend is drawn over the chart). The block has as many
/// columns as the entries need, up to six.
fn canvas(base: (u32, u32), entries: &[Entry]) -> ((u32, u32), Option<u32>) {
    if entries.len() <= INSIDE_LEGEND_MAX {
        return (base, None);
    }
    beside(base, entries)
}

/// The canvas with the legend always beside the chart (for charts the data fill).
fn beside(base: (u32, u32), entries: &[Entry]) -> ((u32, u32), Option<u32>) {
    let cols = entries
        .len()
        .div_ceil(legend_rows(base.1))
        .min(LEGEND_COLUMNS);
    let w = legend_column_width(entries) * cols as u32;
    ((base.0 + w, base.1), Some(w))
}

/// Splits `root` into the chart's area and, when the legend goes beside it, draws the legend
/// block (column by column; what does not fit is counted on the last line).
fn split_for_legend<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    base: (u32, u32),
    side: Option<u32>,
    entries: &[Entry],
) -> Res<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>> {
    if side.is_none() {
        return Ok(root.clone());
    }
    let (chart, right) = root.split_horizontally(base.0);
    let col_w = legend_column_width(entries);
    let rows = legend_rows(base.1);
    let capacity = rows * LEGEND_COLUMNS;
    let shown = if entries.len() > capacity {
        capacity - 1
    } else {
        entries.len()
    };
    let max_chars = ((col_w.saturating_sub(46)) / CHAR_PX).max(4) as usize;
    let font = ("sans-serif", 12).into_font();
    for (k, e) in entries.iter().take(shown).enumerate() {
        let x0 = 6 + (k / rows) as i32 * col_w as i32;
        let y = 30 + 16 * (k % rows) as i32;
        let x1 = x0 + 24;
        match e.mark {
            Mark::Line => right.draw(&PathElement::new(
                vec![(x0, y), (x1, y)],
                e.col.stroke_width(2),
            )),
            Mark::Dash => right.draw(&PathElement::new(
                vec![(x0, y), (x0 + 10, y)],
                e.col.stroke_width(1),
            )),
            Mark::Dot => right.draw(&Circle::new((x0 + 12, y), 4, e.col.filled())),
            Mark::Cross => right.draw(&Cross::new((x0 + 12, y), 4, e.col.stroke_width(2))),
            Mark::Block => right.draw(&Rectangle::new(
                [(x0 + 4, y - 5), (x0 + 19, y + 5)],
                e.col.filled(),
            )),
            Mark::Triangle => right.draw(&TriangleMarker::new((x0 + 12, y), 6, e.col.filled())),
        }
        .map_err(err)?;
        right
            .draw(&Text::new(
                shorten_middle(&e.label, max_chars),
                (x1 + 6, y - 7),
                font.clone(),
            ))
            .map_err(err)?;
    }
    if shown < entries.len() {
        let k = shown;
        let x0 = 6 + (k / rows) as i32 * col_w as i32;
        let y = 30 + 16 * (k % rows) as i32;
        right
            .draw(&Text::new(
                format!("… {} more", entries.len() - shown),
                (x0, y - 7),
                font.clone(),
            ))
            .map_err(err)?;
    }
    Ok(chart)
}

/// The legend drawn over the plot, in a corner the data leave free.
fn overlay_legend<'a, CT: plotters::coord::CoordTranslate>(
    c: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    pos: SeriesLabelPosition,
    opacity: f64,
) -> Res<()> {
    c.configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(opacity))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// Step points of an empirical CDF over `n` trials.
fn cdf_points(values: &[f64], n: usize, x_end: f64) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mut pts = Vec::with_capacity(2 * v.len() + 2);
    if n == 0 {
        return pts;
    }
    let mut prev = 0.0;
    for (i, x) in v.iter().enumerate() {
        let y = (i + 1) as f64 / n as f64;
        pts.push((*x, prev));
        pts.push((*x, y));
        prev = y;
    }
    pts.push((x_end, prev));
    pts
}

/// The CDFs of `curves` on one chart, and `reference` curves (dashed) on top. `log_x` uses a
/// logarithmic time axis.
pub fn cdf_chart(
    title: &str,
    x_desc: &str,
    curves: &[Curve],
    reference: &[Curve],
    log_x: bool,
) -> Res<String> {
    let all = || {
        curves
            .iter()
            .chain(reference)
            .flat_map(|c| c.values.iter().copied())
    };
    let mut lo = all()
        .filter(|x| x.is_finite())
        .fold(f64::INFINITY, f64::min);
    let mut hi = all()
        .filter(|x| x.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        lo = 1.0;
        hi = 10.0;
    }
    if log_x {
        lo = lo.max(1e-3);
        lo = 10f64.powf(lo.log10().floor());
        hi = 10f64.powf(hi.max(lo * 10.0).log10().ceil());
    } else {
        lo = 0.0f64.min(lo);
        hi = if hi > lo { hi * 1.05 } else { lo + 1.0 };
    }
    let mut entries = entries_of(curves.iter().map(|c| c.label.as_str()), Mark::Line);
    entries.extend(reference.iter().map(|r| Entry {
        label: format!("{} (reference)", r.label),
        col: colour(reference_colour(curves, r)),
        mark: Mark::Dash,
    }));
    let (size, side) = canvas(SIZE, &entries);
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = split_for_legend(&root, SIZE, side, &entries)?;
        let inside = side.is_none();
        let caption = (title, ("sans-serif", 20));
        if log_x {
            let mut c = ChartBuilder::on(&root)
                .caption(caption.0, caption.1)
                .margin(15)
                .margin_right(35)
                .x_label_area_size(45)
                .y_label_area_size(60)
                .build_cartesian_2d((lo..hi).log_scale(), 0f64..1f64)
                .map_err(err)?;
            let xf = tick_once();
            c.configure_mesh()
                .x_desc(x_desc)
                .y_desc("cumulative fraction of trials")
                .x_label_formatter(&xf)
                .draw()
                .map_err(err)?;
            draw_cdfs(&mut c, curves, reference, hi, inside)?;
        } else {
            let mut c = ChartBuilder::on(&root)
                .caption(caption.0, caption.1)
                .margin(15)
                .margin_right(35)
                .x_label_area_size(45)
                .y_label_area_size(60)
                .build_cartesian_2d(lo..hi, 0f64..1f64)
                .map_err(err)?;
            let xf = tick_once();
            c.configure_mesh()
                .x_desc(x_desc)
                .y_desc("cumulative fraction of trials")
                .x_label_formatter(&xf)
                .draw()
                .map_err(err)?;
            draw_cdfs(&mut c, curves, reference, hi, inside)?;
        }
        root.present().map_err(err)?;
    }
    Ok(s)
}

fn draw_cdfs<'a, X>(
    c: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<X, plotters::coord::types::RangedCoordf64>,
    >,
    curves: &[Curve],
    reference: &[Curve],
    x_end: f64,
    legend_inside: bool,
) -> Res<()>
where
    X: Ranged<ValueType = f64>,
{
    for (i, cv) in curves.iter().enumerate() {
        let col = colour(i);
        c.draw_series(LineSeries::new(
            cdf_points(&cv.values, cv.n, x_end),
            col.stroke_width(2),
        ))
        .map_err(err)?
        .label(cv.label.clone())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
    }
    for rc in reference {
        let col = colour(reference_colour(curves, rc));
        let pts = cdf_points(&rc.values, rc.n, x_end);
        // Dashed: every other segment.
        let segs: Vec<PathElement<(f64, f64)>> = pts
            .windows(2)
            .enumerate()
            .filter(|(k, _)| k % 2 == 0)
            .map(|(_, w)| PathElement::new(vec![w[0], w[1]], col.stroke_width(1)))
            .collect();
        c.draw_series(segs)
            .map_err(err)?
            .label(format!("{} (reference)", rc.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], col.stroke_width(1)));
    }
    if legend_inside {
        overlay_legend(c, SeriesLabelPosition::LowerRight, 0.85)?;
    }
    Ok(())
}

/// A reference curve takes the colour of the point it belongs to.
fn reference_colour(curves: &[Curve], r: &Curve) -> usize {
    curves
        .iter()
        .position(|c| c.label == r.label)
        .unwrap_or(curves.len())
}

/// Legend of the triangles that mark medians beyond the horizon.
const BEYOND: &str = "median beyond the horizon (censored)";
const MEAN_GROUPED: &str = "mean of uncensored trials (box: p25–p75, line: p5–p95)";

/// Quantiles of one point for the summary charts.
#[derive(Clone, Debug)]
pub struct Box5 {
    pub label: String,
    /// Points with the same group share a colour and a median line on a chart against a
    /// parameter (the values of the other varied parameters, e.g. `prevote=true`); empty when
    /// nothing else varies.
    pub group: String,
    pub x: f64,
    pub p5: Option<f64>,
    pub p25: Option<f64>,
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p95: Option<f64>,
    pub mean: Option<f64>,
    /// The median is beyond the horizon (more than half the trials censored): drawn as a
    /// triangle at the top of the chart instead of nothing.
    pub median_censored: bool,
}

/// The median (line and dots), the interquartile range and the 5–95 % range of a measure
/// against a numeric parameter, one colour and line per group (`categorical`: against the
/// point labels, in order, written vertically).
pub fn measure_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    boxes: &[Box5],
    categorical: bool,
) -> Res<String> {
    let ys = boxes
        .iter()
        .flat_map(|b| [b.p5, b.p25, b.p50, b.p75, b.p95, b.mean])
        .flatten();
    let y_hi = ys.fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let xs: Vec<f64> = boxes
        .iter()
        .enumerate()
        .map(|(i, b)| if categorical { i as f64 } else { b.x })
        .collect();
    let (mut x_lo, mut x_hi) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if !x_lo.is_finite() {
        x_lo = 0.0;
        x_hi = 1.0;
    }
    // The smallest gap between two distinct x values sets the width of the boxes, so that
    // neighbours (and the groups side by side at one x) do not overlap.
    let mut distinct = xs.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let gap = distinct
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min);
    let gap = if gap.is_finite() { gap } else { 1.0 };
    let pad = ((x_hi - x_lo) * 0.04).max(gap * 0.6);
    let (x_lo, x_hi) = (x_lo - pad, x_hi + pad);
    let mut groups: Vec<&str> = Vec::new();
    for b in boxes {
        if !groups.contains(&b.group.as_str()) {
            groups.push(&b.group);
        }
    }
    let grouped = !categorical && groups.len() > 1;
    let group_of = |b: &Box5| {
        if grouped {
            groups.iter().position(|g| *g == b.group).unwrap_or(0)
        } else {
            0
        }
    };
    let slots = if grouped { groups.len() } else { 1 };
    // Groups side by side at one x stay close to it (within ±20 % of the gap).
    let slot = if grouped { gap * 0.4 } else { gap * 0.8 } / slots as f64;
    let offset = |g: usize| (g as f64 - (slots as f64 - 1.0) / 2.0) * slot;
    let half = slot * 0.35;
    let mut entries: Vec<Entry> = Vec::new();
    if grouped {
        for (g, name) in groups.iter().enumerate() {
            entries.push(Entry {
                label: format!("median, {name}"),
                col: colour(g),
                mark: Mark::Dot,
            });
        }
        entries.push(Entry {
            label: MEAN_GROUPED.to_string(),
            col: BLACK,
            mark: Mark::Cross,
        });
        if boxes.iter().any(|b| b.median_censored && b.p50.is_none()) {
            entries.push(Entry {
                label: BEYOND.to_string(),
                col: BLACK,
                mark: Mark::Triangle,
            });
        }
    }
    // Category labels are written vertically, in an area as tall as the longest needs.
    let labels: Vec<String> = boxes.iter().map(|b| b.label.clone()).collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    let label_area = if categorical {
        (30 + 6 * longest).clamp(60, 320)
    } else {
        45
    };
    let base = (SIZE.0, SIZE.1 - 45 + label_area);
    let (size, side) = canvas(base, &entries);
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = split_for_legend(&root, base, side, &entries)?;
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .margin_right(35)
            .x_label_area_size(label_area)
            .y_label_area_size(60)
            .build_cartesian_2d(x_lo..x_hi, 0f64..y_hi)
            .map_err(err)?;
        let xf = tick_once();
        // A parameter with whole values only (servers failed, a count) gets no ticks between.
        let whole = xs.iter().all(|x| x.fract() == 0.0);
        let fmt = |x: &f64| {
            if categorical || (whole && x.fract().abs() > 1e-9) {
                // Categories are drawn below, vertically.
                String::new()
            } else {
                xf(x)
            }
        };
        let yf = |y: &f64| tick(*y);
        let mut mesh = c.configure_mesh();
        mesh.x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&fmt)
            .y_label_formatter(&yf);
        if categorical {
            mesh.x_labels(boxes.len().max(2) * 2 + 1).disable_x_mesh();
        }
        mesh.draw().map_err(err)?;
        if categorical {
            // Past about one label per 14 px they would overprint: name every k-th point.
            let every = (labels.len() / 60).max(1);
            let max_chars = ((label_area - 30) / 6) as usize;
            let font = TextStyle::from(
                ("sans-serif", 12)
                    .into_font()
                    .transform(FontTransform::Rotate90),
            )
            .pos(Pos::new(HPos::Left, VPos::Center));
            for (i, l) in labels.iter().enumerate().step_by(every) {
                let (px, py) = c.backend_coord(&(i as f64, 0.0));
                let text = shorten_middle(l, max_chars);
                root.draw(&Text::new(text, (px, py + 8), font.clone()))
                    .map_err(err)?;
            }
        }
        let grey = RGBColor(150, 150, 150);
        for (b, &x) in boxes.iter().zip(&xs) {
            let g = group_of(b);
            let x = x + offset(g);
            if let (Some(a), Some(z)) = (b.p5, b.p95) {
                c.draw_series(std::iter::once(PathElement::new(
                    vec![(x, a), (x, z)],
                    grey.stroke_width(1),
                )))
                .map_err(err)?;
            }
            if let (Some(a), Some(z)) = (b.p25, b.p75) {
                c.draw_series(std::iter::once(Rectangle::new(
                    [(x - half, a), (x + half, z)],
                    colour(g).mix(0.3).filled(),
                )))
                .map_err(err)?;
            }
        }
        let names: Vec<&str> = if grouped { groups.clone() } else { vec![""] };
        for (g, name) in names.iter().enumerate() {
            let col = colour(g);
            let med: Vec<(f64, f64)> = boxes
                .iter()
                .zip(&xs)
                .filter(|(b, _)| group_of(b) == g)
                .filter_map(|(b, &x)| b.p50.map(|y| (x + offset(g), y)))
                .collect();
            if !categorical {
                c.draw_series(LineSeries::new(med.clone(), col.stroke_width(2)))
                    .map_err(err)?;
            }
            let label = if grouped {
                format!("median, {name}")
            } else {
                "median (box: p25–p75, line: p5–p95)".to_string()
            };
            c.draw_series(med.iter().map(|&p| Circle::new(p, 4, col.filled())))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, col.filled()));
        }
        // Medians beyond the horizon: a triangle pointing up at the top, in the group's colour.
        let top = y_hi * 0.97;
        let beyond: Vec<(f64, f64, RGBColor)> = boxes
            .iter()
            .zip(&xs)
            .filter(|(b, _)| b.median_censored && b.p50.is_none())
            .map(|(b, &x)| (x + offset(group_of(b)), top, colour(group_of(b))))
            .collect();
        if !beyond.is_empty() {
            let legend_col = if grouped { BLACK } else { colour(0) };
            c.draw_series(
                beyond
                    .iter()
                    .map(|&(x, y, col)| TriangleMarker::new((x, y), 6, col.filled())),
            )
            .map_err(err)?
            .label(BEYOND)
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, legend_col.filled()));
        }
        // Means: red crosses, or crosses in the group's colour when there are groups.
        let mean_col = |b: &Box5| {
            if grouped {
                colour(group_of(b))
            } else {
                colour(3)
            }
        };
        let mean_legend = if grouped { BLACK } else { colour(3) };
        c.draw_series(boxes.iter().zip(&xs).filter_map(|(b, &x)| {
            b.mean
                .map(|y| Cross::new((x + offset(group_of(b)), y), 4, mean_col(b).stroke_width(2)))
        }))
        .map_err(err)?
        .label(if grouped {
            MEAN_GROUPED
        } else {
            "mean of uncensored trials"
        })
        .legend(move |(x, y)| Cross::new((x + 10, y), 4, mean_legend.stroke_width(2)));
        if side.is_none() {
            // The legend goes in the upper corner that hides the fewest marks (a long tail or
            // a censored point is often at the upper left: the first points of a sweep).
            let mut marks: Vec<(i32, i32)> = Vec::new();
            for (b, &x) in boxes.iter().zip(&xs) {
                let x = x + offset(group_of(b));
                for y in [b.p5, b.p25, b.p50, b.p75, b.p95, b.mean]
                    .into_iter()
                    .flatten()
                {
                    marks.push(c.backend_coord(&(x, y)));
                }
            }
            marks.extend(beyond.iter().map(|&(x, y, _)| c.backend_coord(&(x, y))));
            let lines =
                2 + usize::from(!beyond.is_empty()) + if grouped { groups.len() } else { 0 };
            let longest = groups
                .iter()
                .map(|g| g.chars().count() + 8)
                .max()
                .unwrap_or(0)
                .max(MEAN_GROUPED.chars().count());
            let (w, h) = (longest as i32 * CHAR_PX as i32 + 50, lines as i32 * 20 + 10);
            let (xr, yr) = c.plotting_area().get_pixel_range();
            let (x0, x1, y0) = (xr.start, xr.end, yr.start);
            let hidden = |left: i32| {
                marks
                    .iter()
                    .filter(|&&(x, y)| x >= left && x <= left + w && y >= y0 && y <= y0 + 10 + h)
                    .count()
            };
            let pos = if hidden(x1 - 10 - w) < hidden(x0 + 10) {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::UpperLeft
            };
            overlay_legend(&mut c, pos, 0.85)?;
        }
        root.present().map_err(err)?;
    }
    Ok(s)
}

/// A step series of one node: (time ms, value), and the intervals (ms) the node was down,
/// where its line is broken (a crashed server's last value is not a live one).
#[derive(Clone, Debug, Default)]
pub struct Steps {
    pub node: String,
    pub points: Vec<(f64, f64)>,
    pub down: Vec<(f64, f64)>,
}

/// The unit of a time axis ending at `end_ms`: milliseconds up to 100 s, seconds up to two
/// hours, hours beyond (a ten-hour run labelled in ms reads "35000000"). Returns the divisor
/// from ms and the axis description.
pub fn time_unit(end_ms: f64, what: &str) -> (f64, String) {
    let (div, unit) = if end_ms > 2.0 * 3_600_000.0 {
        (3_600_000.0, "h")
    } else if end_ms > 100_000.0 {
        (1000.0, "s")
    } else {
        (1.0, "ms")
    };
    (div, format!("{what} ({unit})"))
}

/// The step line of `points` up to `end`, as polylines broken at the `down` intervals.
fn step_lines(points: &[(f64, f64)], down: &[(f64, f64)], end: f64) -> Vec<Vec<(f64, f64)>> {
    let is_down = |t: f64| down.iter().any(|&(a, b)| a <= t && t < b);
    let mut lines: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    // The times at which the line changes: the points and the ends of the down intervals.
    let mut cuts: Vec<f64> = points.iter().map(|p| p.0).collect();
    cuts.extend(down.iter().flat_map(|&(a, b)| [a, b]));
    cuts.retain(|t| *t < end);
    cuts.push(end);
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    // The cuts are in order: the value in force moves forward with them (linear, not a scan
    // of the points per cut: a commits series has up to 2,000 points per server).
    let mut next = 0;
    let mut value: Option<f64> = None;
    for w in cuts.windows(2) {
        let (from, to) = (w[0], w[1]);
        while next < points.len() && points[next].0 <= from {
            value = Some(points[next].1);
            next += 1;
        }
        match value {
            Some(v) if !is_down(from) => {
                if let Some(&(_, last)) = cur.last() {
                    if last != v {
                        cur.push((from, v));
                    }
                } else {
                    cur.push((from, v));
                }
                cur.push((to, v));
            }
            _ => {
                if cur.len() > 1 {
                    lines.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
        }
    }
    if cur.len() > 1 {
        lines.push(cur);
    }
    lines
}

/// Step lines of several nodes on one chart (term or commits per server over time). Lines
/// with equal values would hide each other, so each is drawn up to 2 px above or below its
/// value (less with many servers); a node's line is broken while it is down.
pub fn steps_chart(title: &str, y_desc: &str, series: &[Steps], end_ms: f64) -> Res<String> {
    // Counts: the axis ends on a whole number, with at most one tick per whole number.
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let y_hi = (y_max * 1.1).ceil().max(y_max + 1.0);
    let y_ticks = (y_hi as usize + 1).min(11);
    let end = end_ms.max(1e-3);
    let (div, x_desc) = time_unit(end, "simulated time");
    let entries = entries_of(series.iter().map(|sr| sr.node.as_str()), Mark::Line);
    let (size, side) = canvas(SIZE, &entries);
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = split_for_legend(&root, SIZE, side, &entries)?;
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .margin_right(35)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end / div, 0f64..y_hi)
            .map_err(err)?;
        let (_, h_px) = c.plotting_area().dim_in_pixel();
        let per_px = y_hi / f64::from(h_px.max(1));
        let n = series.len();
        let step_px = (8.0 / n as f64).min(1.0);
        // Counts (terms, commits): whole numbers without a decimal point.
        let whole = |v: &f64| {
            if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        };
        c.configure_mesh()
            .x_desc(x_desc.as_str())
            .x_label_formatter(&|x: &f64| tick(*x))
            .y_desc(y_desc)
            .y_labels(y_ticks)
            .y_label_formatter(&whole)
            .draw()
            .map_err(err)?;
        for (i, sr) in series.iter().enumerate() {
            let dodge = (i as f64 - (n as f64 - 1.0) / 2.0) * step_px * per_px;
            let col = colour(i);
            let lines = step_lines(&sr.points, &sr.down, end);
            let style = col.stroke_width(2);
            let drawn = c
                .draw_series(lines.into_iter().map(|l| {
                    PathElement::new(
                        l.into_iter()
                            .map(|(t, v)| (t / div, v + dodge))
                            .collect::<Vec<_>>(),
                        style,
                    )
                }))
                .map_err(err)?;
            drawn.label(sr.node.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2))
            });
        }
        if side.is_none() {
            overlay_legend(&mut c, SeriesLabelPosition::UpperLeft, 0.85)?;
        }
        root.present().map_err(err)?;
    }
    Ok(s)
}

/// Role names by level (the results' role series).
pub const ROLES: [&str; 6] = [
    "down",
    "follower",
    "pre-candidate",
    "candidate",
    "leader",
    "recovering",
];

fn role_colour(level: usize) -> RGBColor {
    match level {
        0 => RGBColor(200, 200, 200),
        1 => RGBColor(158, 202, 225),
        2 => RGBColor(253, 208, 162),
        3 => RGBColor(253, 141, 60),
        4 => RGBColor(49, 163, 84),
        _ => RGBColor(158, 154, 200),
    }
}

/// VRR's names for the same levels: a backup, a replica in view-change status, the primary
/// (VRR has no pre-candidates: an empty name leaves a level out of the legend).
pub const VRR_ROLES: [&str; 6] = ["down", "backup", "", "view change", "primary", "recovering"];

/// One row per server, coloured by role over time (`roles`: the names of the levels, [`ROLES`]
/// or [`VRR_ROLES`]). A role held for less than a pixel is still drawn a pixel wide, over its
/// neighbours, so that a short leadership or crash is not lost in a long run.
pub fn role_timeline(title: &str, roles: &[&str; 6], series: &[Steps], end_ms: f64) -> Res<String> {
    let end = end_ms.max(1e-3);
    let (div, x_desc) = time_unit(end, "simulated time");
    let n = series.len().max(1);
    let names: Vec<String> = series.iter().map(|s| s.node.clone()).collect();
    // The rows fill the plot: the legend goes beside it.
    let entries: Vec<Entry> = roles
        .iter()
        .enumerate()
        .filter(|(_, name)| !name.is_empty())
        .map(|(level, name)| Entry {
            label: name.to_string(),
            col: role_colour(level),
            mark: Mark::Block,
        })
        .collect();
    let base = (SIZE.0, (120 + 40 * n as u32).max(260));
    let (size, side) = beside(base, &entries);
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = split_for_legend(&root, base, side, &entries)?;
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .margin_right(35)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..end / div, -0.5f64..(n as f64 - 0.5))
            .map_err(err)?;
        let (w_px, _) = c.plotting_area().dim_in_pixel();
        let min_width = end / f64::from(w_px.max(1));
        let fmt = |y: &f64| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                names[names.len() - 1 - i as usize].clone()
            } else {
                String::new()
            }
        };
        c.configure_mesh()
            .x_desc(x_desc.as_str())
            .x_label_formatter(&|x: &f64| tick(*x))
            .y_labels(n * 2 + 1)
            .y_label_formatter(&fmt)
            .disable_y_mesh()
            .draw()
            .map_err(err)?;
        for (i, sr) in series.iter().enumerate() {
            let row = (n - 1 - i) as f64;
            let (mut long, mut short) = (Vec::new(), Vec::new());
            for (k, &(t, v)) in sr.points.iter().enumerate() {
                let stop = sr.points.get(k + 1).map_or(end, |p| p.0).min(end);
                if stop > t {
                    let (to, list) = if stop - t < min_width {
                        ((t + min_width).min(end), &mut short)
                    } else {
                        (stop, &mut long)
                    };
                    list.push(Rectangle::new(
                        [(t / div, row - 0.35), (to / div, row + 0.35)],
                        role_colour(v as usize).filled(),
                    ));
                }
            }
            c.draw_series(long).map_err(err)?;
            c.draw_series(short).map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(s)
}

/// Client operation latency (ms) against completion time, one colour per client, in the
/// order of first appearance in `ops`.
pub fn latency_chart(title: &str, ops: &[(String, f64, f64)], end_ms: f64) -> Res<String> {
    let y_hi = ops.iter().map(|o| o.2).fold(1.0f64, f64::max) * 1.1;
    let (div, x_desc) = time_unit(end_ms.max(1e-3), "completion time");
    let mut clients: Vec<&str> = Vec::new();
    for o in ops {
        if !clients.contains(&o.0.as_str()) {
            clients.push(&o.0);
        }
    }
    let entries = entries_of(clients.iter().copied(), Mark::Dot);
    let (size, side) = canvas(SIZE, &entries);
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = split_for_legend(&root, SIZE, side, &entries)?;
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .margin_right(35)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end_ms.max(1e-3) / div, 0f64..y_hi)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc(x_desc.as_str())
            .x_label_formatter(&|x: &f64| tick(*x))
            .y_desc("latency (ms)")
            .y_label_formatter(&|y: &f64| tick(*y))
            .draw()
            .map_err(err)?;
        for (i, cl) in clients.iter().enumerate() {
            let col = colour(i);
            c.draw_series(
                ops.iter()
                    .filter(|o| o.0 == *cl)
                    .map(|o| Circle::new((o.1 / div, o.2), 2, col.filled())),
            )
            .map_err(err)?
            .label((*cl).to_string())
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, col.filled()));
        }
        if side.is_none() {
            overlay_legend(&mut c, SeriesLabelPosition::UpperLeft, 0.85)?;
        }
        root.present().map_err(err)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_colours() {
        assert_eq!(tick(0.15000000000000002), "0.15");
        assert_eq!(tick(1000.0), "1000");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(-0.0), "0");
        // Each label once, though plotters' log axis yields 1000 twice.
        let f = tick_once();
        let labels: Vec<String> = [100.0, 900.0, 1000.0, 1000.0000000001, 10000.0]
            .iter()
            .map(&f)
            .collect();
        assert_eq!(labels, ["100", "900", "1000", "", "10000"]);
        // No colour repeats among the first 300 series, and none is black.
        let cs: Vec<RGBColor> = (0..300).map(colour).collect();
        for (i, a) in cs.iter().enumerate() {
            assert_ne!(*a, RGBColor(0, 0, 0));
            for b in &cs[..i] {
                assert_ne!(a, b, "series {i} repeats a colour");
            }
        }
    }

    #[test]
    fn a_log_axis_names_each_tick_once() {
        let c = vec![Curve {
            label: "a".into(),
            values: vec![120.0, 300.0, 950.0],
            n: 3,
        }];
        let svg = cdf_chart("t", "ms", &c, &[], true).unwrap();
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split('>').nth(1))
            .map(|t| t.split('<').next().unwrap_or("").trim())
            .collect();
        assert_eq!(
            texts.iter().filter(|t| **t == "1000").count(),
            1,
            "{texts:?}"
        );
        assert!(
            !texts.contains(&"100.0") && !texts.contains(&"1000.0"),
            "{texts:?}"
        );
    }

    #[test]
    fn long_labels_are_shortened_in_the_middle() {
        assert_eq!(shorten_middle("abc", 5), "abc");
        assert_eq!(shorten_middle("a-long-prefix/x=1", 9), "a-lo…/x=1");
        assert_ne!(
            shorten_middle("a-long-prefix/x=1", 9),
            shorten_middle("a-long-prefix/x=2", 9)
        );
    }

    fn box5() -> Box5 {
        Box5 {
            label: "x".into(),
            group: String::new(),
            x: 1.0,
            p5: Some(1.0),
            p25: Some(2.0),
            p50: Some(3.0),
            p75: Some(4.0),
            p95: Some(5.0),
            mean: Some(3.1),
            median_censored: false,
        }
    }

    fn entries(n: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                label: format!("s{i}"),
                col: colour(i),
                mark: Mark::Line,
            })
            .collect()
    }

    #[test]
    fn long_legends_go_beside_the_chart_in_columns() {
        assert_eq!(canvas(SIZE, &entries(12)), (SIZE, None));
        // 30 rows fit beside a 560 px chart; "s99" is 3 characters: 46 + 21 px per column.
        assert_eq!(legend_rows(SIZE.1), 32);
        assert_eq!(
            canvas(SIZE, &entries(13)),
            ((SIZE.0 + 67, SIZE.1), Some(67))
        );
        assert_eq!(
            canvas(SIZE, &entries(100)),
            ((SIZE.0 + 4 * 67, SIZE.1), Some(268))
        );
        // At most six columns; the rest is counted.
        let many = series_chart_with(1000);
        assert!(
            many.contains("… 809 more"),
            "legend summarises what does not fit"
        );
    }

    fn series_chart_with(n: usize) -> String {
        let st: Vec<Steps> = (0..n)
            .map(|i| Steps {
                node: format!("s{i}"),
                points: vec![(0.0, 1.0)],
                ..Steps::default()
            })
            .collect();
        steps_chart("t", "term", &st, 10.0).unwrap()
    }

    #[test]
    fn a_chart_against_a_parameter_draws_one_line_per_group() {
        let b = |group: &str, x: f64| Box5 {
            label: format!("{group}/{x}"),
            group: group.into(),
            x,
            ..box5()
        };
        let boxes = [
            b("prevote=false", 1.0),
            b("prevote=true", 1.0),
            b("prevote=false", 2.0),
            b("prevote=true", 2.0),
        ];
        let svg = measure_chart("m", "x", "ms", &boxes, false).unwrap();
        assert!(svg.contains("median, prevote=false") && svg.contains("median, prevote=true"));
        let thick_lines = svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke-width=\"2\""))
            .count();
        assert_eq!(thick_lines, 2, "one median line per group");
        // Categorical: every point's label is written, rotated.
        let svg = measure_chart("m", "point", "ms", &boxes, true).unwrap();
        assert!(svg.contains("prevote=true/2") && svg.contains("rotate(90"));
    }

    #[test]
    fn charts_are_svg_and_deterministic() {
        let c = vec![
            Curve {
                label: "a".into(),
                values: vec![3.0, 1.0, 2.0],
                n: 4,
            },
            Curve {
                label: "b".into(),
                values: vec![10.0, 20.0],
                n: 2,
            },
        ];
        let r = vec![Curve {
            label: "a".into(),
            values: vec![1.5, 2.5],
            n: 2,
        }];
        let lin = cdf_chart("t", "ms", &c, &r, false).unwrap();
        let log = cdf_chart("t", "ms", &c, &r, true).unwrap();
        assert!(lin.starts_with("<svg") && log.starts_with("<svg"));
        assert_eq!(lin, cdf_chart("t", "ms", &c, &r, false).unwrap());
        let pts = cdf_points(&[3.0, 1.0], 4, 5.0);
        assert_eq!(pts.last(), Some(&(5.0, 0.5)));
        let b = box5();
        assert!(
            measure_chart("m", "x", "ms", &[b.clone(), b], true)
                .unwrap()
                .contains("<svg")
        );
        let st = vec![Steps {
            node: "s1".into(),
            points: vec![(0.0, 1.0), (5.0, 4.0)],
            ..Steps::default()
        }];
        assert!(
            steps_chart("term", "term", &st, 10.0)
                .unwrap()
                .contains("<svg")
        );
        assert!(
            role_timeline("roles", &ROLES, &st, 10.0)
                .unwrap()
                .contains("<svg")
        );
        assert!(
            latency_chart("lat", &[("c1".into(), 1.0, 2.0)], 10.0)
                .unwrap()
                .contains("<svg")
        );
    }

    #[test]
    fn step_lines_break_while_a_node_is_down() {
        let pts = [(0.0, 1.0), (5.0, 3.0), (8.0, 3.0)];
        assert_eq!(
            step_lines(&pts, &[], 10.0),
            vec![vec![
                (0.0, 1.0),
                (5.0, 1.0),
                (5.0, 3.0),
                (8.0, 3.0),
                (10.0, 3.0)
            ]]
        );
        // Down from 6 to 9: the line stops at 6 and resumes at 9 with the value then.
        assert_eq!(
            step_lines(&pts, &[(6.0, 9.0)], 10.0),
            vec![
                vec![(0.0, 1.0), (5.0, 1.0), (5.0, 3.0), (6.0, 3.0)],
                vec![(9.0, 3.0), (10.0, 3.0)]
            ]
        );
        // Down to the end: nothing after the crash.
        assert_eq!(
            step_lines(&pts, &[(2.0, 10.0)], 10.0),
            vec![vec![(0.0, 1.0), (2.0, 1.0)]]
        );
    }

    #[test]
    fn long_runs_are_labelled_in_seconds_or_hours() {
        assert_eq!(time_unit(10_000.0, "t"), (1.0, "t (ms)".to_string()));
        assert_eq!(time_unit(600_000.0, "t"), (1000.0, "t (s)".to_string()));
        assert_eq!(
            time_unit(36_000_000.0, "t"),
            (3_600_000.0, "t (h)".to_string())
        );
        let st = vec![Steps {
            node: "s1".into(),
            points: vec![(0.0, 1.0)],
            ..Steps::default()
        }];
        let svg = steps_chart("term", "term", &st, 36_000_000.0).unwrap();
        assert!(svg.contains("simulated time (h)") && !svg.contains("35000000"));
    }

    #[test]
    fn a_role_shorter_than_a_pixel_is_still_drawn() {
        // Leader for 16 ms of a 10 h run: about a thousandth of a pixel.
        let st = vec![Steps {
            node: "s1".into(),
            points: vec![(0.0, 1.0), (1000.0, 4.0), (1016.0, 1.0)],
            ..Steps::default()
        }];
        let svg = role_timeline("roles", &ROLES, &st, 36_000_000.0).unwrap();
        let leader = format!(
            "fill=\"#{:02X}{:02X}{:02X}\"",
            role_colour(4).0,
            role_colour(4).1,
            role_colour(4).2
        );
        // The row's blocks (the legend's are 10 px tall).
        let blocks: Vec<&str> = svg
            .lines()
            .filter(|l| l.starts_with("<rect") && l.contains(&leader))
            .filter(|l| !l.contains("height=\"10\""))
            .collect();
        assert_eq!(blocks.len(), 1, "{blocks:?}");
        assert!(blocks[0].contains("width=\"1\""), "{}", blocks[0]);
    }

    #[test]
    fn a_median_beyond_the_horizon_is_marked_at_the_top() {
        let censored = Box5 {
            label: "150-150".into(),
            p5: None,
            p25: None,
            p50: None,
            p75: None,
            p95: None,
            mean: None,
            median_censored: true,
            ..box5()
        };
        let svg = measure_chart("m", "point", "ms", &[censored, box5()], true).unwrap();
        assert!(svg.contains(BEYOND), "legend");
        assert_eq!(
            svg.lines().filter(|l| l.starts_with("<polygon")).count(),
            2,
            "one triangle on the chart, one in the legend"
        );
    }

    #[test]
    fn a_whole_parameter_has_whole_ticks() {
        let b = |x: f64| Box5 { x, ..box5() };
        let svg = measure_chart("m", "failed", "ms", &[b(0.0), b(1.0), b(2.0)], false).unwrap();
        let labels: Vec<&str> = svg.lines().map(str::trim).collect();
        assert!(labels.contains(&"1") && !labels.contains(&"0.5"), "{svg}");
    }
}
