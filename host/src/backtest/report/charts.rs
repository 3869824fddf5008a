//! The page's charts, drawn by plotters as SVG text to be inlined in the page.
//!
//! Time runs along x as chrono UTC times, so that plotters puts the ticks on round times (whole
//! minutes, hours, days) rather than on round numbers of ms. Points a chart cannot place (not
//! finite, or a time outside the years 1 to 9999) are left out of its curves and its bounds: a
//! NaN or an absurd time would make an axis, and so the whole chart, meaningless. Text is drawn
//! as SVG `<text>` in the browser's sans-serif (plotters only estimates its size here, which
//! needs no font files).

use std::ops::Range;

use chrono::{DateTime, Utc};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::ReportError;
use super::text::money;
use crate::backtest::results::{Direction, Point, RoundTrip};

/// Drawn size in px; the page scales the SVG to its width (the SVG carries a `viewBox`).
const SIZE: (u32, u32) = (960, 380);

/// Half the width of a trade's marker, px.
const MARKER: i32 = 6;

/// Colours of the plugins' curves and trades, by plugin index (Tableau 10: distinguishable
/// from each other and legible on white, which plotters' accessible palettes are not all).
const PALETTE: [RGBColor; 10] = [
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
];

/// The account's curve and an instrument's price: neutral, so plugins' colours stand out.
pub(super) const INK: RGBColor = RGBColor(40, 40, 40);

/// Plugin `index`'s colour (repeating after ten plugins).
pub(super) fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// `#rrggbb` of a colour, for the page's legend swatches.
pub(super) fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// One curve of a line chart.
pub(super) struct Curve<'a> {
    pub name: &'a str,
    pub colour: RGBColor,
    pub points: &'a [Point],
}

/// One plugin's trades on an instrument.
pub(super) struct Trades<'a> {
    pub plugin: &'a str,
    pub colour: RGBColor,
    pub trades: Vec<&'a RoundTrip>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The times a chart places: 0001-01-01 to 9999-12-31, far inside what chrono's arithmetic
/// (and so plotters' tick placement, which adds durations) can hold without overflowing.
const CHART_MS: std::ops::RangeInclusive<i64> = -62_135_596_800_000..=253_402_300_799_999;

/// A time on the x axis, `None` outside [`CHART_MS`].
fn time(ms: i64) -> Option<DateTime<Utc>> {
    if CHART_MS.contains(&ms) { DateTime::from_timestamp_millis(ms) } else { None }
}

/// A point a chart can place.
fn placed(ms: i64, value: f64) -> Option<(DateTime<Utc>, f64)> {
    if value.is_finite() { time(ms).map(|t| (t, value)) } else { None }
}

/// The smallest box holding every placeable point, widened so that nothing lies on its edge
/// (a marker there would be cut in half) and a single point or a flat line still gets axes
/// with some extent.
#[derive(Default)]
struct Bounds {
    x: Option<(i64, i64)>,
    y: Option<(f64, f64)>,
}

impl Bounds {
    fn add(&mut self, ms: i64, value: f64) {
        if placed(ms, value).is_none() {
            return;
        }
        self.x = Some(self.x.map_or((ms, ms), |(lo, hi)| (lo.min(ms), hi.max(ms))));
        self.y = Some(self.y.map_or((value, value), |(lo, hi)| (lo.min(value), hi.max(value))));
    }

    fn ranges(&self) -> Option<(Range<DateTime<Utc>>, Range<f64>)> {
        let ((x0, x1), (y0, y1)) = (self.x?, self.y?);
        // 2% either side, or a minute for a single instant. Both ends are within CHART_MS, so
        // this neither overflows nor leaves chrono's range.
        let pad = if x1 > x0 { ((x1 - x0) / 50).max(1) } else { 60_000 };
        let xs = time(x0 - pad).or(time(x0))?..time(x1 + pad).or(time(x1))?;
        let pad = if y1 > y0 {
            (y1 - y0) * 0.05
        } else if y0 != 0.0 {
            y0.abs() * 0.01
        } else {
            1.0
        };
        Some((xs, (y0 - pad)..(y1 + pad)))
    }
}

fn finite(points: &[Point]) -> impl Iterator<Item = (DateTime<Utc>, f64)> + Clone + '_ {
    points.iter().filter_map(|p| placed(p.ts_ms, p.value))
}

/// How the time axis reads: as fine as its ticks can be for the span shown (plotters puts
/// them at round seconds for a few minutes, round minutes or hours up to days, midnights
/// beyond), so a label never rounds its tick away.
fn time_format(xs: &Range<DateTime<Utc>>) -> &'static str {
    let span = (xs.end - xs.start).num_milliseconds();
    if span <= 10_000 {
        "%Y-%m-%d %H:%M:%S%.3f"
    } else if span <= 600_000 {
        "%Y-%m-%d %H:%M:%S"
    } else if span <= 14 * 86_400_000 {
        "%Y-%m-%d %H:%M"
    } else {
        "%Y-%m-%d"
    }
}

/// Runs `draw` on a fresh SVG canvas and returns the SVG text.
fn svg(title: &str, draw: impl FnOnce(&Area<'_>) -> Drawn) -> Result<String, ReportError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present())
            .map_err(|e| ReportError::Chart { chart: title.to_owned(), message: e.to_string() })?;
    }
    Ok(out)
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedDateTime<DateTime<Utc>>, RangedCoordf64>>;

/// A chart's caption, axes and grid: time along x, labelled as finely as the span needs.
fn frame<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    y_desc: &str,
    xs: Range<DateTime<Utc>>,
    ys: Range<f64>,
) -> Result<Chart<'a, 'b>, DrawingAreaErrorKind<std::io::Error>> {
    let format = time_format(&xs);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        // Room for the last time label, which is centred on its tick near the right edge.
        .margin_right(64)
        .x_label_area_size(32)
        .y_label_area_size(80)
        .build_cartesian_2d(xs, ys)?;
    chart
        .configure_mesh()
        .x_labels(5)
        .y_labels(6)
        .x_label_formatter(&|t: &DateTime<Utc>| t.format(format).to_string())
        .y_label_formatter(&|v: &f64| money(*v))
        .y_desc(y_desc)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    Ok(chart)
}

/// Time against value, one line per curve, with a legend. `None` when no curve has a finite
/// point: an empty chart says nothing the page cannot say in words.
pub(super) fn line_chart(title: &str, y_desc: &str, curves: &[Curve<'_>]) -> Result<Option<String>, ReportError> {
    let mut bounds = Bounds::default();
    for p in curves.iter().flat_map(|c| c.points) {
        bounds.add(p.ts_ms, p.value);
    }
    let Some((xs, ys)) = bounds.ranges() else { return Ok(None) };
    svg(title, |root| {
        let mut chart = frame(root, title, y_desc, xs, ys)?;
        for curve in curves {
            let colour = curve.colour;
            chart
                .draw_series(LineSeries::new(finite(curve.points), colour.stroke_width(2)))?
                .label(curve.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
        if !curves.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .draw()?;
        }
        Ok(())
    })
    .map(Some)
}

/// A trade as the price chart draws it.
struct Placed {
    entry: (DateTime<Utc>, f64),
    exit: (DateTime<Utc>, f64),
    long: bool,
}

impl Placed {
    fn of(t: &RoundTrip) -> Option<Self> {
        Some(Self {
            entry: placed(t.entry_ms, t.entry_price)?,
            exit: placed(t.exit_ms, t.exit_price)?,
            long: t.direction == Direction::Long,
        })
    }
}

/// The points of a triangle around a marker's centre, in px: up for a buy, down for a sell.
fn triangle(up: bool) -> [(i32, i32); 3] {
    let m = MARKER;
    if up { [(0, -m), (m, m - 1), (-m, m - 1)] } else { [(0, m), (m, 1 - m), (-m, 1 - m)] }
}

/// An instrument's price with each plugin's trades on it: a filled triangle at the entry and a
/// hollow one at the exit, pointing up for a buy and down for a sell (a long trade is ▲ then ▽,
/// a short one ▼ then △), joined by a thin line, in the plugin's colour. `None` when there is
/// neither a finite price nor a trade.
pub(super) fn price_chart(
    symbol: &str,
    prices: &[Point],
    plugins: &[Trades<'_>],
) -> Result<Option<String>, ReportError> {
    let mut bounds = Bounds::default();
    for p in prices {
        bounds.add(p.ts_ms, p.value);
    }
    for t in plugins.iter().flat_map(|p| &p.trades) {
        bounds.add(t.entry_ms, t.entry_price);
        bounds.add(t.exit_ms, t.exit_price);
    }
    let Some((xs, ys)) = bounds.ranges() else { return Ok(None) };
    let title = symbol;
    svg(title, |root| {
        let mut chart = frame(root, title, "price", xs, ys)?;
        chart
            .draw_series(LineSeries::new(finite(prices), INK.stroke_width(1)))?
            .label(symbol)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], INK.stroke_width(1)));
        for plugin in plugins {
            let colour = plugin.colour;
            // Only trades with both ends placeable; the CSV file has them all.
            let trades: Vec<Placed> = plugin.trades.iter().filter_map(|t| Placed::of(t)).collect();
            chart
                .draw_series(
                    trades.iter().map(|t| PathElement::new(vec![t.entry, t.exit], colour.mix(0.6).stroke_width(1))),
                )?
                .label(plugin.plugin)
                .legend(move |(x, y)| {
                    EmptyElement::at((x + 10, y)) + Polygon::new(triangle(true).to_vec(), colour.filled())
                });
            chart.draw_series(
                trades
                    .iter()
                    .map(|t| EmptyElement::at(t.entry) + Polygon::new(triangle(t.long).to_vec(), colour.filled())),
            )?;
            chart.draw_series(trades.iter().map(|t| {
                let [a, b, c] = triangle(!t.long);
                EmptyElement::at(t.exit) + PathElement::new(vec![a, b, c, a], colour.stroke_width(2))
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()?;
        Ok(())
    })
    .map(Some)
}
