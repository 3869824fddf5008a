// A backtest's `report.json` (the Rust type RunReport, host/src/backtest/results.rs), opened in
// the page: what report.html shows (host/src/backtest/report/html.rs), in the same style: the
// inputs, the figures per plugin and in total, the equity and drawdown curves (uPlot here, SVG
// there) and the trades. Nothing is sent anywhere: the file is read in the browser.

import { el, money, price, percent, num, isoTime, visible, colour, swatch, INK, NONE, replaceChildren } from './util.js';
import { lineOptions, fitWidth } from './live.js';
import { answer } from './actions.js';

const $ = (id) => document.getElementById(id);
const LISTED_TRADES = 500; // as the HTML report: beyond that, trades.csv has them
const CHART_HEIGHT = 280;
let plots = []; // uPlot instances and their resize observers, to let go of on close

/** The word for what `events` counts (report/results.rs `replayed_unit`). */
const unitOf = (fill) => (fill === 'book' ? 'ticks' : 'bars');

/** A fee rate as a percentage with as many decimals as it needs (up to 4): 0.0008 -> 0.08%. */
function feeRate(fraction) {
  if (!Number.isFinite(fraction)) return NONE;
  return `${(fraction * 100).toFixed(4).replace(/\.?0+$/, '')}%`;
}

const time = (ms) => (ms === null || ms === undefined ? null : isoTime(ms));

function table(head, rows, cls) {
  return el('div', { class: 'scroll' }, el('table', { class: cls }, head ? el('tr', {}, head) : null, rows));
}
const th = (text, num) => el('th', { class: num ? 'num' : null, text });
const td = (text, cls) => el('td', { class: cls, text });

function inputs(i) {
  const kv = (k, v) => el('tr', {}, th(k), td(v));
  const balances = (i.balances || []).map(([ccy, amount]) => `${money(amount)} ${visible(ccy)}`).join(', ');
  const tier = i.fee_tier ? ` (tier ${visible(i.fee_tier)})` : '';
  return [
    el('h3', { text: 'Inputs' }),
    table(null, [
      kv('instruments', (i.instruments || []).map(visible).join(', ')),
      kv('from (inclusive)', time(i.from_ms) ?? 'start of the data'),
      kv('to (exclusive)', time(i.to_ms) ?? 'end of the data'),
      kv('fill model', visible(i.fill ?? NONE)),
      kv('fees', `maker ${feeRate(i.maker_fee)}, taker ${feeRate(i.taker_fee)}${tier}`),
      kv('starting balances', balances),
      kv('tradebox version', visible(i.version ?? NONE)),
    ]),
    el('h3', { text: 'Data files' }),
    table([th('path'), th('sha256')], (i.data || []).map((f) =>
      el('tr', {}, el('td', {}, el('code', { text: visible(f.path) })), td(f.sha256, 'hash')))),
    el('h3', { text: 'Plugins' }),
    table([th('name'), th('file'), th('sha256'), th('config')], (i.plugins || []).map((p, n) => {
      let config = p.config;
      try {
        config = JSON.stringify(JSON.parse(p.config), null, 2);
      } catch {
        // As given when it does not parse (the host wrote it, so it normally does).
      }
      return el('tr', {},
        el('td', {}, swatch(colour(n)), visible(p.name)),
        el('td', {}, el('code', { text: visible(p.path) })),
        td(p.sha256, 'hash'),
        el('td', {}, el('pre', { text: config })));
    })),
  ];
}

/** One row's cells under the stats header (report/text.rs `StatsRow::cells`). */
function statsCells(replayed, delivered, s) {
  const winRate = s.round_trips > 0 ? percent(s.wins / s.round_trips) : NONE;
  return [
    replayed, delivered, s.orders, s.denied, s.fills, s.round_trips, winRate, money(s.pnl), money(s.fees),
    money(s.funding), money(s.max_drawdown), percent(s.max_drawdown_pct),
    s.sharpe === null || s.sharpe === undefined ? NONE : s.sharpe.toFixed(2), money(s.end_equity),
  ].map((v) => td(String(v ?? NONE), 'num'));
}

function results(r) {
  const unit = unitOf(r.inputs.fill);
  const header = ['plugin', unit, 'delivered', 'orders', 'denied', 'fills', 'round trips', 'win rate', 'PnL', 'fees',
    'funding', 'max DD', 'max DD %', 'Sharpe', 'end equity'].map((t, n) => th(t, n > 0));
  const rows = r.plugins.map((p, n) =>
    el('tr', {}, el('td', {}, swatch(colour(n)), visible(p.name)), statsCells(r.events, p.stats.events, p.stats)));
  const delivered = r.plugins.reduce((sum, p) => sum + (p.stats.events || 0), 0);
  rows.push(el('tr', { class: 'total' }, td('total'), statsCells(r.events, delivered, r.total)));
  const out = [
    el('h3', { text: 'Results' }),
    table(header, rows),
    el('p', {
      class: 'muted',
      text: `${r.events} ${unit} in ${Number(r.elapsed_s).toFixed(3)} s (${Number(r.events_per_s).toFixed(0)} ${unit}/s). ` +
        `${unit}: replayed by the run; delivered: the events a plugin was handed (market data, its orders' reports and ` +
        `fills, timers). Money in the instruments' quote currency; PnL after fees and funding (funding paid is ` +
        'positive), open positions marked at the last price.',
    }),
  ];
  const faults = r.plugins.filter((p) => p.fault);
  if (faults.length) {
    out.push(el('h3', { text: 'Faults' }),
      el('ul', {}, faults.map((p) => el('li', { class: 'fault' }, el('b', { text: visible(p.name) }), `: ${visible(p.fault)}`))),
      el('p', { class: 'muted', text: 'The run carried on without a faulted plugin.' }));
  }
  const open = (r.total.open_positions || []).filter(([, size]) => size !== 0).map(([sym, size]) => `${visible(sym)} ${num(size)}`);
  if (open.length) out.push(el('p', { text: `Open at the end: ${open.join(', ')}` }));
  return out;
}

/** How far each point is below the running peak (report/html.rs `drawdown`). */
function drawdown(points) {
  let peak = -Infinity;
  return points.map((p) => {
    if (p.value !== null && p.value > peak) peak = p.value;
    return { ts_ms: p.ts_ms, value: p.value === null ? null : p.value - peak };
  });
}

/** Curves of {ts_ms, value} points on one x axis, for uPlot. */
function aligned(curves) {
  const times = [...new Set(curves.flatMap((c) => c.points.map((p) => p.ts_ms)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  return [times.map((t) => t / 1000), ...curves.map((c) => {
    const y = new Array(times.length).fill(null);
    for (const p of c.points) y[index.get(p.ts_ms)] = p.value;
    return y;
  })];
}

function chart(title, yLabel, curves, caption) {
  const box = el('div', { class: 'chart' });
  const figure = el('figure', {}, el('h3', { text: title }), box, el('figcaption', { text: caption }));
  if (!curves.some((c) => c.points.length > 0)) return { figure: el('p', { class: 'muted', text: 'No equity points.' }), draw() {} };
  return {
    figure,
    draw() {
      const series = curves.map((c) => ({ label: c.label, stroke: c.colour, width: c.width }));
      const plot = new uPlot(lineOptions(box.clientWidth, CHART_HEIGHT, series, yLabel, { dates: true }), aligned(curves), box);
      const observer = fitWidth(box, () => plot, CHART_HEIGHT);
      plots.push({ destroy: () => { observer.disconnect(); plot.destroy(); } });
    },
  };
}

function trades(r) {
  const out = [el('h3', { text: 'Trades' })];
  r.plugins.forEach((p, n) => {
    const list = p.trades || [];
    const summary = el('summary', {}, swatch(colour(n)), `${visible(p.name)}: ${list.length} round trip${list.length === 1 ? '' : 's'}`);
    const details = el('details', {}, summary);
    if (list.length) {
      details.append(table(
        ['symbol', 'direction', 'entry', 'price', 'exit', 'price', 'size', 'PnL', 'fees', 'net'].map((t, i) => th(t, [3, 5, 6, 7, 8, 9].includes(i))),
        list.slice(0, LISTED_TRADES).map((t) => el('tr', {},
          td(visible(t.symbol)), td(t.direction), td(isoTime(t.entry_ms)), td(price(t.entry_price), 'num'),
          td(isoTime(t.exit_ms)), td(price(t.exit_price), 'num'), td(num(t.size), 'num'), td(money(t.pnl), 'num'),
          td(money(t.fees), 'num'), td(money(t.pnl - t.fees), 'num')))));
      if (list.length > LISTED_TRADES) details.append(el('p', { class: 'muted', text: `The first ${LISTED_TRADES}; trades.csv has all.` }));
    }
    out.push(details);
  });
  return out;
}

/** Shows a parsed report in `#report`. Throws on a shape that is not a RunReport. */
export function showReport(r, fileName) {
  if (!r || typeof r !== 'object' || !r.inputs || !Array.isArray(r.plugins) || !r.total) {
    throw new Error('this is not a backtest report.json (no inputs, plugins and total)');
  }
  for (const p of plots) p.destroy();
  plots = [];
  const i = r.inputs;
  const period = `from ${time(i.from_ms) ?? 'the start of the data'} to ${time(i.to_ms) ?? 'the end of the data'}`;
  // The total last, drawn over the plugins' curves it often coincides with (as report.html).
  const equity = r.plugins.map((p, n) => ({ label: visible(p.name), colour: colour(n), points: p.equity || [] }));
  equity.push({ label: 'total', colour: INK, width: 2, points: r.equity || [] });
  const equityChart = chart('Equity', 'equity', equity,
    "The account's equity and each plugin's (its start plus its PnL), thinned. Drag to zoom, double-click to reset.");
  const ddChart = chart('Drawdown', 'below peak', equity.map((c) => ({ ...c, points: drawdown(c.points) })),
    'How far each equity curve is below its running peak, in money; its lowest point is the maximum drawdown ' +
    "(the table's comes from every bar, this from the thinned curve).");
  replaceChildren($('report'),
    el('div', { class: 'report-head' },
      el('h2', { text: `Backtest report: ${(i.instruments || []).map(visible).join(', ')}` }),
      el('button', { type: 'button', text: 'Close', on: { click: closeReport } })),
    el('p', { class: 'muted', text: `${visible(fileName)} · ${period} · tradebox ${visible(i.version ?? NONE)}` }),
    inputs(i),
    results(r),
    equityChart.figure,
    ddChart.figure,
    trades(r));
  $('report').hidden = false;
  // uPlot measures its box: draw once the report is in the page.
  equityChart.draw();
  ddChart.draw();
}

function closeReport() {
  for (const p of plots) p.destroy();
  plots = [];
  $('report').replaceChildren();
  $('report').hidden = true;
  $('report-file').value = '';
}

async function onReportFile(e) {
  const file = e.target.files && e.target.files[0];
  if (!file) return;
  try {
    showReport(JSON.parse(await file.text()), file.name);
  } catch (err) {
    closeReport();
    answer(false, `Report ${visible(file.name)}: ${err.message || err}`);
  }
}

export function initReports() {
  $('report-file').addEventListener('change', onReportFile);
}
