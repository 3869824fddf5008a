// Rendering the live snapshots: the header (account), the plugin cards, the PnL chart, prices,
// feeds, rate limits and the audit trail.
//
// Snapshots can come 20 times a second with 10 plugins, so nothing is rebuilt per snapshot:
// every card, row and figure is created once, keyed (plugins by name and staged flag, prices by
// instrument, audit rows by seq), and then only its changed texts are written. Small lists that
// change rarely (a plugin's open orders, its recent fills, the rate-limit windows) are rebuilt
// only when their content differs from the last one drawn. The chart is redrawn at most once a
// second.

import {
  el, setText, setAttr, setClass, replaceChildren, bar, money, signedMoney, price, num, percent, mib,
  isoTime, clock, duration, visible, colour, swatch, NONE,
} from './util.js';

const STATES = ['active', 'reduce_only', 'halted'];
const $ = (id) => document.getElementById(id);

/** The colour index of each plugin name, in order of first appearance (a staged copy shares it). */
const colourIndex = new Map();
function colourOf(name) {
  if (!colourIndex.has(name)) colourIndex.set(name, colourIndex.size);
  return colour(colourIndex.get(name));
}

/** A trading state's word and class (active green, reduce_only amber, halted red). */
function showState(node, state, text) {
  setText(node, text || state || 'unknown'); // the API's word, as the CLI and the audit log write it
  setClass(node, STATES.map((s) => `state-${s}`), STATES.includes(state) ? `state-${state}` : null);
}

/** How restrictive a trading state is: a plugin trades as the stricter of its own and the account's. */
const strictness = (state) => STATES.indexOf(state);

// ---------------------------------------------------------------------------------------------
// Header: the account

function renderAccount(snap) {
  const a = snap.account || {};
  showState($('account-state'), a.state);
  document.body.dataset.accountState = a.state || '';
  setText($('venue'), snap.venue ? `on ${snap.venue}` : '');
  setText($('equity'), a.equity === null || a.equity === undefined ? NONE : money(a.equity));
  const balances = (a.balances || []).map((b) => `${visible(b.ccy)} ${money(b.total)} (available ${money(b.available)})`);
  setAttr($('equity'), 'title', balances.length ? balances.join('\n') : 'the venue reports no balances');

  const pnl = a.pnl || {};
  setText($('pnl'), signedMoney(pnl.total));
  setClass($('pnl'), ['gain', 'loss'], pnl.total > 0 ? 'gain' : pnl.total < 0 ? 'loss' : null);
  setText($('pnl-parts'), `realized ${money(pnl.realized)} · unrealized ${money(pnl.unrealized)} · fees ${money(pnl.fees)}`);

  const b = a.breaker || {};
  const breaker = $('breaker');
  const limits = breakerLimits(b);
  // The limit closest to tripping sets the bar and the colour; the title has them all.
  const nearest = limits.reduce((m, l) => (!m || l.used > m.used ? l : m), null);
  setAttr(breaker, 'title', limits.length ? limits.map((l) => l.text).join('\n') : 'no loss limit is set');
  if (b.tripped) {
    setText(breaker, `TRIPPED${nearest ? ` (${nearest.text})` : ''}`);
    setClass(breaker, ['warn', 'bad'], 'bad');
    breakerBar.set(1, 'bad');
  } else if (!nearest) {
    setText(breaker, 'no loss limit set');
    setClass(breaker, ['warn', 'bad'], null);
    breakerBar.set(0);
  } else {
    setText(breaker, nearest.text);
    setClass(breaker, ['warn', 'bad'], nearest.used >= 0.9 ? 'bad' : nearest.used >= 0.7 ? 'warn' : null);
    breakerBar.set(nearest.used);
  }
  const unpriced = a.unpriced && a.unpriced.length ? ` · not in equity (no USDT price): ${a.unpriced.map(visible).join(', ')}` : '';
  setText($('balances'), (balances.length ? balances.join(' · ') : 'no balances reported') + unpriced);

  // Conditions an operator must not miss, as a line of their own under the header.
  const alerts = [];
  if (a.state === 'halted' && !b.tripped) alerts.push(['bad', 'The account is halted: no plugin may trade until it is resumed.']);
  if (a.state === 'reduce_only') alerts.push(['warn', 'The account is reduce-only: plugins may only close positions.']);
  if (b.tripped) alerts.push(['bad', 'The loss breaker has tripped: the account is halted until resumed.']);
  if (a.audit_failing) alerts.push(['bad', 'The audit log cannot be written: orders are refused until it can.']);
  renderUnowned(a.unowned_orders);
  if (a.adopted_open_orders > 0 && !Array.isArray(a.unowned_orders)) {
    alerts.push(['warn', `${a.adopted_open_orders} open order(s) on the venue that no plugin owns (adopted at start).`]);
  }
  const signature = JSON.stringify(alerts);
  const box = $('alerts');
  if (box.dataset.signature !== signature) {
    box.dataset.signature = signature;
    replaceChildren(box, alerts.map(([level, t]) => el('p', { class: `alert-${level}`, text: t })));
    box.hidden = alerts.length === 0;
  }
  setText($('last-snapshot'), `snapshot ${snap.seq} at ${clock(snap.ts)} UTC`);
  // The tab's title says the state and PnL, for an operator looking at another tab.
  const title = `${a.state || '?'} ${signedMoney(pnl.total)} · tradebox`;
  if (document.title !== title) document.title = title;
}

const breakerBar = bar();

/**
 * Open orders no loaded plugin owns (an unloaded plugin's left working, slot N; or adopted at
 * start, slot 0), in a small table under the header; hidden when there are none. Older hosts
 * send no list: the alert line counts the adopted ones instead.
 */
let unownedSig = '';
function renderUnowned(orders) {
  const list = Array.isArray(orders) ? orders : [];
  const sig = JSON.stringify(list);
  if (sig === unownedSig) return;
  unownedSig = sig;
  $('unowned').hidden = list.length === 0;
  setText($('unowned-count'), String(list.length));
  replaceChildren($('unowned-orders').tBodies[0], list.map((o) => el('tr', {},
    el('td', {
      class: 'num', text: o.slot === 0 ? '0 (adopted)' : num(o.slot),
      title: o.slot === 0 ? 'adopted at start: an earlier run left it' : 'left working by an unloaded plugin',
    }),
    el('td', { text: visible(o.instrument ?? NONE) }),
    el('td', { class: `side-${o.side}`, text: visible(o.side ?? '') }),
    el('td', { class: 'num', text: price(o.price) }), el('td', { class: 'num', text: num(o.size) }),
    el('td', { class: 'num', text: num(o.filled) }), el('td', { text: visible(o.status ?? '') }),
    el('td', { class: 'hash', text: visible(o.client_id ?? '') }))));
}

/**
 * The breaker's limits as [{used (0..1), text}]. Two shapes are read: the spec's one limit
 * (`max_loss`, `loss`, `distance`; `max_loss` null: none) and the host's breaker distance (a
 * daily loss limit and a drawdown limit, `to_daily_loss` / `to_drawdown` null when off).
 */
function breakerLimits(b) {
  const out = [];
  const add = (name, value, limit, left) => {
    if (left === null || left === undefined || !(limit > 0)) return;
    out.push({ used: Math.max(0, value) / limit, text: `${money(left)} to go (${name} ${money(value)} of ${money(limit)})` });
  };
  if ('max_loss' in b) add('loss', b.loss, b.max_loss, b.distance);
  if ('max_daily_loss' in b) add('daily loss', b.loss, b.max_daily_loss, b.to_daily_loss);
  if ('max_drawdown' in b) add('drawdown', b.drawdown, b.max_drawdown, b.to_drawdown);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Plugin cards

/** Cards by key (`name` or `name\u0000staged`). */
const cards = new Map();
const keyOf = (p) => (p.staged ? `${p.name}\u0000staged` : p.name);

/** Handlers for the card buttons, given by app.js (actions.js): {halt, resume, unload, promote, reload}. */
let cardActions = {};
export function setCardActions(actions) {
  cardActions = actions;
}

function kvRow(label, ...value) {
  return el('tr', {}, el('th', { text: label }), el('td', {}, ...value));
}

function makeCard(p) {
  const c = { plugin: p.name, staged: !!p.staged, sig: {} };
  const field = (cls, tag = 'span') => el(tag, { class: cls });
  c.trading = field('trading-state state');
  c.run = field('run-state muted');
  c.version = field('version muted');
  c.pnl = field('pnl');
  c.pnlParts = field('muted small');
  c.positions = field('positions');
  c.openOrders = field('open-orders');
  c.fills = field('fills-count');
  c.counts = field('counts');
  c.denials = field('denials');
  c.meta = el('div', { class: 'card-meta muted small' });
  c.grant = el('div', { class: 'grant small' });
  c.error = el('p', { class: 'last-error fault small', hidden: true });
  c.cpuBar = bar();
  c.memBar = bar();
  c.cpuText = field('small muted');
  c.memText = field('small muted');
  c.ordersSummary = el('summary');
  c.ordersBody = el('div', { class: 'scroll' });
  c.fillsSummary = el('summary');
  c.fillsBody = el('div', { class: 'scroll' });

  const staged = c.staged;
  const button = (cls, text, title, handler, enabled = true) =>
    el('button', {
      type: 'button', class: cls, text, title, disabled: !enabled,
      on: { click: () => handler && handler(c.plugin, staged) },
    });
  // The admin API halts, resumes and unloads the running plugin of a name; its staged copy is
  // only reloaded or promoted, so those buttons are there but off on a staged card.
  const offOnStaged = staged ? 'not for a staged copy: promote it, or reload it with another file' : undefined;
  const reload = el('input', {
    type: 'file', class: 'reload-file', accept: '.wasm,application/wasm',
    on: {
      change: (e) => {
        const file = e.target.files && e.target.files[0];
        e.target.value = ''; // choosing the same file again must fire `change` again
        if (file && cardActions.reload) cardActions.reload(c.plugin, staged, file);
      },
    },
  });
  c.haltButton = button('halt danger', 'Halt', offOnStaged || 'halt this plugin: its open orders are cancelled', cardActions.halt, !staged);
  c.resumeButton = button('resume', 'Resume', offOnStaged || 'let this plugin trade again', cardActions.resume, !staged);
  const actions = el('div', { class: 'card-actions' },
    c.haltButton,
    c.resumeButton,
    button('unload', 'Unload…', offOnStaged || 'stop and remove this plugin', cardActions.unload, !staged),
    staged ? button('promote', 'Promote', 'replace the running plugin with this staged copy', cardActions.promote) : null,
    el('label', { class: 'file-button', title: 'load a new version of this plugin from a .wasm file' },
      staged ? 'Reload staged from file…' : 'Reload from file…', reload),
  );

  c.node = el('article', {
    class: staged ? 'card staged' : 'card',
    dataset: staged ? { plugin: p.name, staged: 'true' } : { plugin: p.name },
  },
    el('div', { class: 'card-head' },
      swatch(colourOf(p.name)),
      el('b', { class: 'name', text: visible(p.name) }), ' ', c.version,
      staged ? el('span', { class: 'tag', text: 'staged' }) : null,
      el('span', { class: 'spacer' }),
      el('span', { class: 'state-pair' }, el('span', { class: 'state-label', text: 'trading:' }), c.trading),
      el('span', { class: 'state-pair' }, el('span', { class: 'state-label', text: 'run:' }), c.run)),
    c.meta,
    c.error,
    el('table', { class: 'kv' },
      kvRow('PnL', c.pnl, ' ', c.pnlParts),
      kvRow('positions', c.positions),
      kvRow('orders', c.openOrders, ' open · ', c.fills, ' fills · ', c.counts),
      kvRow('denials', c.denials),
      kvRow('CPU', c.cpuBar.node, c.cpuText),
      kvRow('memory', c.memBar.node, c.memText)),
    c.grant,
    el('details', { class: 'orders' }, c.ordersSummary, c.ordersBody),
    el('details', { class: 'fills' }, c.fillsSummary, c.fillsBody),
    actions);
  return c;
}

/** Rebuilds a part only when its data changed since it was last drawn. */
function changed(c, part, data) {
  const s = JSON.stringify(data);
  if (c.sig[part] === s) return false;
  c.sig[part] = s;
  return true;
}

const list = (v) => (v && v.length ? v.map(visible).join(', ') : 'none');

/** The grant as the plugin runs with it: the grant within what its manifest requests. */
function effectiveGrant(p) {
  const g = p.granted || {};
  const r = p.requested && typeof p.requested === 'object' ? p.requested : null;
  // An empty list of channels or order kinds grants every one (engine/permissions.rs Grants).
  const within = (granted, requested) => {
    const gl = Array.isArray(granted) ? granted : [];
    if (!r || !Array.isArray(requested)) return gl.length ? list(gl) : 'all';
    const set = gl.length ? requested.filter((x) => gl.includes(x)) : requested;
    return set.length ? list(set) : 'none';
  };
  const parts = [
    `instruments ${list(g.instruments)}`,
    `channels ${within(g.channels, r && r.channels)}`,
    `order kinds ${within(g.order_kinds, r && r.order_kinds)}`,
  ];
  if (r && r.max_orders_per_sec !== null && r.max_orders_per_sec !== undefined) parts.push(`at most ${num(r.max_orders_per_sec)} orders/s`);
  if (r && r.max_order_notional !== null && r.max_order_notional !== undefined) parts.push(`orders up to ${num(r.max_order_notional)} notional`);
  return `runs with: ${parts.join('; ')}${g.partial ? ' (partial grants allowed)' : ''}`;
}

function grantTitle(p) {
  const g = p.granted || {};
  const r = p.requested;
  const all = (v) => (v && v.length ? list(v) : 'all');
  const lines = [
    `granted: instruments ${list(g.instruments)}; channels ${all(g.channels)}; order kinds ${all(g.order_kinds)}`,
    r ? `requested: instruments ${list(r.instruments)}; channels ${list(r.channels)}; order kinds ${list(r.order_kinds)}`
      : r === null ? 'requested: nothing said (no manifest): the grant as it is' : 'requested: not sent by this host',
    'an empty grant of channels or order kinds means all of those requested',
  ];
  return lines.join('\n');
}

function updateCard(c, p, now, accountState) {
  // The plugin trades as the stricter of its own state and the account's.
  if (strictness(accountState) > strictness(p.trading_state) && strictness(p.trading_state) >= 0) {
    showState(c.trading, accountState, `${accountState} (account)`);
    setAttr(c.trading, 'title', `its own state is ${p.trading_state}; the account's (${accountState}) is stricter and applies`);
  } else {
    showState(c.trading, p.trading_state);
    setAttr(c.trading, 'title', 'its trading state');
  }
  if (!c.staged) {
    const halted = p.trading_state === 'halted';
    const active = p.trading_state === 'active';
    if (c.haltButton.disabled !== halted) {
      c.haltButton.disabled = halted;
      c.haltButton.title = halted ? 'already halted' : 'halt this plugin: its open orders are cancelled';
    }
    if (c.resumeButton.disabled !== active) {
      c.resumeButton.disabled = active;
      c.resumeButton.title = active ? 'already active' : 'let this plugin trade again';
    }
  }
  setText(c.run, p.run_state || '');
  setClass(c.run, ['fault'], p.run_state && p.run_state !== 'Running' ? 'fault' : null);
  // The version alone (the "v" before it is CSS), so the text is what the manifest says.
  setText(c.version, p.version ? visible(p.version) : '');
  setAttr(c.version, 'title', p.version ? `version ${p.version}` : 'no manifest: no version');

  const pnl = p.pnl || {};
  setText(c.pnl, signedMoney(pnl.total));
  setClass(c.pnl, ['gain', 'loss'], pnl.total > 0 ? 'gain' : pnl.total < 0 ? 'loss' : null);
  setText(c.pnlParts, `realized ${money(pnl.realized)} · unrealized ${money(pnl.unrealized)} · fees ${money(pnl.fees)}`);

  const positions = (p.positions || []).filter((x) => x.size !== 0);
  setText(c.positions, positions.length ? positions.map((x) => `${visible(x.instrument)} ${num(x.size)}`).join(', ') : 'flat');
  const orders = p.open_orders || [];
  setText(c.openOrders, orders.length);
  const counts = p.counts || {};
  setText(c.fills, counts.fills ?? (p.fills || []).length);
  setText(c.counts,
    `${counts.orders ?? NONE} sent · ${counts.denied ?? NONE} denied · ${counts.rejected ?? NONE} rejected · ` +
    `${counts.failures ?? NONE} failures`);
  setClass(c.counts, ['fault'], counts.failures > 0 ? 'fault' : null);
  const denials = Object.entries(p.denials || {}).sort((a, b) => b[1] - a[1]);
  setText(c.denials, denials.length ? denials.map(([code, n]) => `${visible(code)} ${n}`).join(', ') : 'none');

  showCpu(c, p.cpu || {}, now);
  const mem = p.memory || {};
  c.memBar.set(mem.cap_bytes ? mem.used_bytes / mem.cap_bytes : 0);
  setText(c.memText, `${mib(mem.used_bytes)} of ${mib(mem.cap_bytes)}`);

  const signer = p.signer ? visible(p.signer) : 'unknown';
  const hash = p.hash ? `${String(p.hash).slice(0, 12)}…` : NONE;
  setText(c.meta, `signer ${signer} · hash ${hash} · reloads ${p.reloads ?? 0} · ${counts.events ?? NONE} events`);
  setAttr(c.meta, 'title', `hash ${p.hash || NONE}\nsource ${p.source || NONE}`);
  setText(c.grant, p.granted ? effectiveGrant(p) : 'granted: unknown');
  setAttr(c.grant, 'title', p.granted ? grantTitle(p) : null);

  c.error.hidden = !p.last_error;
  setText(c.error, p.last_error ? `last error: ${visible(p.last_error)}` : '');

  if (changed(c, 'orders', orders)) {
    setText(c.ordersSummary, `open orders (${orders.length})`);
    replaceChildren(c.ordersBody, orders.length === 0 ? el('p', { class: 'muted small', text: 'none' }) :
      el('table', { class: 'small' },
        el('tr', {}, ...['instrument', 'side', 'price', 'size', 'filled', 'status', 'client id']
          .map((h, i) => el('th', { class: i >= 2 && i <= 4 ? 'num' : null, text: h }))),
        orders.map((o) => el('tr', {},
          el('td', { text: visible(o.instrument ?? NONE) }), el('td', { class: `side-${o.side}`, text: visible(o.side ?? '') }),
          el('td', { class: 'num', text: price(o.price) }), el('td', { class: 'num', text: num(o.size) }),
          el('td', { class: 'num', text: num(o.filled) }), el('td', { text: visible(o.status ?? '') }),
          el('td', { class: 'hash', text: visible(o.client_id ?? '') })))));
  }
  const fills = p.fills || [];
  if (changed(c, 'fills', fills)) {
    setText(c.fillsSummary, `recent fills (${fills.length} of ${counts.fills ?? fills.length})`);
    replaceChildren(c.fillsBody, fills.length === 0 ? el('p', { class: 'muted small', text: 'none' }) :
      el('table', { class: 'small' },
        el('tr', {}, ...['time (UTC)', 'instrument', 'side', 'price', 'size', 'fee']
          .map((h, i) => el('th', { class: i >= 3 ? 'num' : null, text: h }))),
        fills.map((f) => el('tr', { title: `client id ${visible(f.client_id ?? NONE)}${f.liquidity ? ` · ${visible(f.liquidity)}` : ''}` },
          el('td', { text: clock(f.ts), title: isoTime(f.ts) }), el('td', { text: visible(f.instrument ?? NONE) }),
          el('td', { class: `side-${f.side}`, text: visible(f.side ?? '') }), el('td', { class: 'num', text: price(f.price) }),
          el('td', { class: 'num', text: num(f.size) }),
          el('td', { class: 'num', text: `${money(f.fee)}${f.fee_currency ? ` ${visible(f.fee_currency)}` : ''}` })))));
  }
}

/**
 * The CPU bar and line. Two shapes are read: the spec's (`calls_p99_us` against the per-call
 * deadline) and the host's (`used_us`, a running total of CPU time, against `share`, the part
 * of a core it may use, 0 for no cap). From the total the page takes the use over the last
 * second or more (shorter windows flicker at 20 snapshots a second).
 */
function showCpu(c, cpu, now) {
  const throttled = (cpu.throttled_ms > 0 ? ` · throttled ${cpu.throttled_ms} ms` : '') + (cpu.background ? ' · background' : '');
  if (cpu.calls_p99_us !== undefined && cpu.calls_p99_us !== null) {
    const deadlineUs = (cpu.deadline_ms || 0) * 1000;
    c.cpuBar.set(deadlineUs > 0 ? cpu.calls_p99_us / deadlineUs : 0);
    setText(c.cpuText, `p99 ${Math.round(cpu.calls_p99_us)} µs / ${cpu.deadline_ms ?? NONE} ms${throttled}`);
    setAttr(c.cpuText, 'title', 'the 99th percentile of its calls against the per-call deadline');
    return;
  }
  if (Number.isFinite(cpu.used_us) && Number.isFinite(now)) {
    const prev = c.cpuPrev;
    if (!prev || cpu.used_us < prev.used || now < prev.ts) {
      c.cpuPrev = { ts: now, used: cpu.used_us }; // the first sight, or a reload restarted the count
    } else if (now - prev.ts >= 1000) {
      c.cpuLoad = (cpu.used_us - prev.used) / ((now - prev.ts) * 1000);
      c.cpuPrev = { ts: now, used: cpu.used_us };
    }
  }
  const share = cpu.share > 0 ? cpu.share : null;
  const load = c.cpuLoad;
  c.cpuBar.set(load === undefined ? 0 : load / (share || 1));
  const used = load === undefined ? 'measuring…' : `${(load * 100).toFixed(1)}% of a core`;
  setText(c.cpuText, `${used}${share ? ` (share ${(share * 100).toFixed(0)}%)` : ' (no share)'}${throttled}`);
  setAttr(c.cpuText, 'title', `CPU over the last second, against its share of a core (${share ? 'capped' : 'no cap: against one core'}); ` +
    `per-call deadline ${cpu.deadline_ms ?? NONE} ms; time it waited for its share; "background": over its share lately`);
}

function renderPlugins(plugins, now, accountState) {
  const container = $('plugins');
  const seen = new Set();
  plugins.forEach((p, i) => {
    const key = keyOf(p);
    seen.add(key);
    let c = cards.get(key);
    if (!c) {
      c = makeCard(p);
      cards.set(key, c);
    }
    updateCard(c, p, now, accountState);
    // Keep the snapshot's order, moving a node only when it is out of place.
    if (container.children[i] !== c.node) container.insertBefore(c.node, container.children[i] || null);
  });
  for (const [key, c] of cards) {
    if (!seen.has(key)) {
      c.node.remove();
      cards.delete(key);
    }
  }
  $('no-plugins').hidden = plugins.length > 0;
}

// ---------------------------------------------------------------------------------------------
// The PnL chart: every plugin's PnL since start, one uPlot series each.

/** Curves by key: {label, colour, staged, points: [[ts_ms, pnl], ...]}. */
const curves = new Map();
let plot = null;
let plotKeys = '';
let drawTimer = null;
let lastDraw = 0;
const CHART_MS = 1000; // redraw at most once a second
const MAX_POINTS = 1200; // a curve longer than this is thinned to half (the host thins to 600)

function updateCurves(snap, first) {
  const keys = new Set();
  for (const p of snap.plugins || []) {
    const key = keyOf(p);
    keys.add(key);
    let curve = curves.get(key);
    if (!curve) {
      curve = { label: p.staged ? `${visible(p.name)} (staged)` : visible(p.name), colour: colourOf(p.name), staged: !!p.staged, points: [] };
      curves.set(key, curve);
    }
    const total = p.pnl ? p.pnl.total : null;
    if (p.pnl_curve && p.pnl_curve.length > 0) {
      // The first snapshot of a connection carries the whole curve: it replaces ours.
      curve.points = p.pnl_curve.map(([t, v]) => [t, v]);
    } else if (first) {
      curve.points = [];
    }
    const last = curve.points[curve.points.length - 1];
    // Later snapshots carry none: the page appends the total itself, at most once a second.
    if (Number.isFinite(total) && (!last || snap.ts - last[0] >= 1000)) curve.points.push([snap.ts, total]);
    if (curve.points.length > MAX_POINTS) curve.points = curve.points.filter((_, i) => i % 2 === 0 || i === curve.points.length - 1);
  }
  for (const key of [...curves.keys()]) if (!keys.has(key)) curves.delete(key);
  scheduleDraw();
}

function scheduleDraw() {
  if (drawTimer) return;
  const wait = Math.max(0, lastDraw + CHART_MS - Date.now());
  drawTimer = setTimeout(() => {
    drawTimer = null;
    lastDraw = Date.now();
    drawChart();
  }, wait);
}

/** The curves on one x axis (uPlot's data shape): the union of their times, null where a curve has no point. */
function aligned(list) {
  const times = [...new Set(list.flatMap((c) => c.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const ys = list.map((c) => {
    const y = new Array(times.length).fill(null);
    for (const [t, v] of c.points) y[index.get(t)] = v;
    return y;
  });
  return [times.map((t) => t / 1000), ...ys]; // uPlot's time scale is in seconds
}

function drawChart() {
  const box = $('pnl-chart');
  if (box.offsetParent === null) return; // hidden (signed out)
  const list = [...curves.values()];
  $('pnl-empty').hidden = list.some((c) => c.points.length > 0);
  const keys = JSON.stringify(list.map((c) => [c.label, c.colour]));
  const data = aligned(list);
  if (plot && keys === plotKeys) {
    plot.setData(data);
    return;
  }
  // The set of plugins changed: a new chart (uPlot's series can be added, but a new one is simpler).
  if (plot) plot.destroy();
  plotKeys = keys;
  plot = new uPlot(lineOptions(box.clientWidth, 260, list.map((c) => ({
    label: c.label, stroke: c.colour, dash: c.staged ? [6, 4] : undefined,
  })), 'PnL'), data, box);
}

/**
 * uPlot options for a time chart of money series, times in UTC (as the audit log's). `dates`:
 * every time label carries its date, as report.html's (`2026-01-01 01:00`).
 */
export function lineOptions(width, height, series, yLabel, { dates = false } = {}) {
  return {
    width: Math.max(300, width),
    height,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
    cursor: { drag: { x: true, y: false } },
    // Room on the right for the last time label, centred on its tick (null: uPlot's own).
    padding: [null, dates ? 70 : 36, null, null],
    scales: { x: { time: true } },
    series: [
      { label: 'time (UTC)', value: (u, v) => (v === null || v === undefined ? NONE : isoTime(v * 1000).replace('T', ' ')) },
      ...series.map((s) => ({
        label: s.label, stroke: s.stroke, width: s.width || 1.5, dash: s.dash, spanGaps: true,
        value: (u, v) => (v === null || v === undefined ? NONE : money(v)),
      })),
    ],
    axes: [
      // `space`: the least room between ticks, px; wider than the widest label, so labels never run together.
      { values: dates ? dateTicks : timeTicks, incrs: TIME_INCRS, space: dates ? 140 : 80 },
      {
        label: yLabel, labelSize: 18, labelGap: 2, gap: 5,
        // As wide as the widest tick label (about 7 px a character at uPlot's 12 px font), so
        // the labels never cover the axis title.
        size: (u, values) => 22 + 7.2 * Math.max(4, ...(values || []).map((v) => String(v).length)),
        values: (u, vals) => vals.map((v) => money(v)),
      },
    ],
  };
}

/** Tick spacings of the time axis, s: whole seconds and up (ticks closer than a second repeated
 * their label, since the labels show seconds). */
const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
  172800, 604800, 2592000, 31536000];

/** The time axis's tick labels, 24-hour UTC: seconds when ticks are under a minute apart, the date when days. */
function timeTicks(u, splits, axis, space, incr) {
  return splits.map((s) => {
    const iso = isoTime(s * 1000); // 2026-12-07T20:06:31.124Z
    if (incr >= 86400) return iso.slice(0, 10);
    if (incr >= 3600 * 6) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
    // A tick at midnight says which day begins (a curve over days has no other date on it).
    if (incr >= 60 && iso.slice(11, 16) === '00:00') return iso.slice(5, 10);
    return incr < 60 ? iso.slice(11, 19) : iso.slice(11, 16);
  });
}

/** A report's time labels: the date and the time to the minute on every tick (the date alone for days). */
function dateTicks(u, splits, axis, space, incr) {
  return splits.map((s) => {
    const iso = isoTime(s * 1000);
    if (incr >= 86400) return iso.slice(0, 10);
    return `${iso.slice(0, 10)} ${iso.slice(11, incr < 60 ? 19 : 16)}`;
  });
}

/** Keeps a chart as wide as its box. */
export function fitWidth(box, getPlot, height) {
  const observer = new ResizeObserver(() => {
    const p = getPlot();
    if (p && box.clientWidth > 0 && Math.abs(p.width - box.clientWidth) > 2) p.setSize({ width: Math.max(300, box.clientWidth), height });
  });
  observer.observe(box);
  return observer;
}

// ---------------------------------------------------------------------------------------------
// Prices, feeds, rate limits

const priceRows = new Map();

function renderPrices(prices, now) {
  const body = $('prices').tBodies[0];
  const seen = new Set();
  prices.forEach((q, i) => {
    seen.add(q.instrument);
    let r = priceRows.get(q.instrument);
    if (!r) {
      r = { cells: [0, 1, 2, 3, 4, 5].map((n) => el('td', { class: n === 0 ? null : n === 5 ? 'num age' : 'num' })) };
      r.node = el('tr', { dataset: { instrument: q.instrument } }, r.cells);
      setText(r.cells[0], visible(q.instrument));
      priceRows.set(q.instrument, r);
    }
    setText(r.cells[1], price(q.bid));
    setText(r.cells[2], price(q.ask));
    const spread = Number.isFinite(q.bid) && Number.isFinite(q.ask) && q.bid > 0 ? (q.ask - q.bid) / q.bid : null;
    const bp = spread === null ? null : spread * 1e4;
    setText(r.cells[3], bp === null ? NONE : `${bp.toFixed(bp < 1 ? 2 : 1)} bp`);
    setText(r.cells[4], price(q.last));
    const age = Number.isFinite(q.ts) ? now - q.ts : null;
    setText(r.cells[5], age === null ? NONE : duration(Math.max(0, age)));
    setAttr(r.cells[5], 'title', isoTime(q.ts));
    setClass(r.cells[5], ['old-price'], age !== null && age > 10000 ? 'old-price' : null);
    if (body.children[i] !== r.node) body.insertBefore(r.node, body.children[i] || null);
  });
  for (const [k, r] of priceRows) if (!seen.has(k)) { r.node.remove(); priceRows.delete(k); }
  // The host's prices may carry no time: then the age column goes rather than reading "—".
  setClass($('prices'), ['no-age'], prices.some((q) => Number.isFinite(q.ts)) ? null : 'no-age');
  $('prices-empty').hidden = prices.length > 0;
}

let feedsSig = '';
function renderFeeds(feeds) {
  const sig = JSON.stringify(feeds);
  if (sig === feedsSig) return;
  feedsSig = sig;
  const table = $('feeds');
  if (!feeds) {
    replaceChildren(table, el('tr', {}, el('td', { class: 'muted', text: 'this venue has no market data feeds' })));
    return;
  }
  const up = (v) => el('span', { class: v ? 'up' : 'down', text: v ? 'up' : 'DOWN' });
  const warnIf = (n) => el('span', { class: n > 0 ? 'warn-text' : null, text: num(n) });
  replaceChildren(table,
    kvRow('public feed', up(feeds.public_up)),
    kvRow('private feed', feeds.private_up === null || feeds.private_up === undefined
      ? el('span', { class: 'muted', text: 'none on this venue' }) : up(feeds.private_up)),
    kvRow('frames', num(feeds.frames)),
    kvRow('unreadable', warnIf(feeds.unreadable)),
    kvRow('book gaps', warnIf(feeds.book_gaps)),
    kvRow('checksum mismatches', warnIf(feeds.checksum_mismatches)),
    kvRow('reconnects', warnIf(feeds.reconnects)));
}

let ratesSig = '';
function renderRates(rates) {
  const sig = JSON.stringify(rates);
  if (sig === ratesSig) return;
  ratesSig = sig;
  const box = $('rate-limits');
  if (!rates) {
    replaceChildren(box, el('p', { class: 'muted', text: 'this venue has no rate limits' }));
    return;
  }
  // The spec's `windows` name their plugin; the host's `fullest` give its slot, named in `plugin_names`.
  const windows = rates.windows || rates.fullest || [];
  const names = rates.plugin_names || {};
  const whose = (w) => {
    if (w.plugin === null || w.plugin === undefined) return 'account';
    return typeof w.plugin === 'number' ? visible(names[w.plugin] ?? `slot ${w.plugin}`) : visible(w.plugin);
  };
  const rows = windows.map((w) => {
    const b = bar();
    const fraction = w.capacity > 0 ? w.used / w.capacity : 0;
    b.set(w.blocked_ms > 0 ? 1 : fraction, w.blocked_ms > 0 ? 'bad' : undefined);
    const scope = w.instrument ? `${visible(w.scope)} ${visible(w.instrument)}` : visible(w.scope);
    return el('tr', { title: w.blocked_ms > 0 ? `closed for ${duration(w.blocked_ms)} more after "too many requests"` : null },
      el('td', { text: w.blocked_ms > 0 ? `${scope} (closed)` : scope, class: w.blocked_ms > 0 ? 'fault' : null }),
      el('td', { text: whose(w) }),
      el('td', {}, b.node),
      el('td', { class: 'num', text: `${w.used} / ${w.capacity} per ${duration(w.window_ms)}` }),
      el('td', { class: 'num', text: `${Math.max(0, w.capacity - w.used)}` }));
  });
  replaceChildren(box,
    el('p', { class: 'small' },
      `${num(rates.immediate)} sent at once · ${num(rates.waited)} waited (avg ${Number(rates.avg_wait_ms || 0).toFixed(1)} ms) · `,
      el('span', { class: rates.refused > 0 ? 'warn-text' : null, text: `${num(rates.refused)} refused` }),
      ` · ${num(rates.backoffs)} back-offs`),
    windows.length === 0 ? el('p', { class: 'muted small', text: 'no windows in use' }) :
      el('table', { class: 'small' },
        el('tr', {}, ...['scope', 'plugin', 'used', '', 'headroom']
          .map((h, i) => el('th', { class: i >= 3 ? 'num' : null, text: h }))),
        rows));
}

// ---------------------------------------------------------------------------------------------
// The audit trail: newest first, at most MAX_AUDIT rows, filtered by text.

const MAX_AUDIT = 500;
// Lifecycle and operator records (kind `state`: loads, halts, reloads) outlive the order
// traffic around them: a market maker writes tens of records a second, which would push an
// operator's halt out of the table within seconds.
const KEEP_STATE = 200;
let auditLastSeq = -1;
let auditFilter = [];

function auditMatches(row) {
  return auditFilter.every((term) => row.dataset.search.includes(term));
}

function renderAudit(records, first) {
  const body = $('audit').tBodies[0];
  if (first) {
    // A new connection's first snapshot carries the last 200 records: the table starts again
    // from them (the host may have restarted, its log's seq from 1 again).
    body.replaceChildren();
    auditLastSeq = -1;
  }
  const fresh = records.filter((r) => r.seq > auditLastSeq);
  if (fresh.length === 0) return;
  auditLastSeq = fresh[fresh.length - 1].seq;
  // Oldest first in the snapshot, newest first on the page: build in reverse into a fragment.
  const fragment = document.createDocumentFragment();
  for (let i = fresh.length - 1; i >= 0 && fragment.childNodes.length < MAX_AUDIT; i--) {
    fragment.append(auditRow(fresh[i]));
  }
  body.insertBefore(fragment, body.firstChild);
  trimAudit(body);
  auditCount();
}

/** `N shown of M kept` while a filter is on; else how many are kept. */
function auditCount() {
  const rows = $('audit').tBodies[0].rows;
  if (auditFilter.length === 0) {
    setText($('audit-count'), `${rows.length} most recent record(s) kept (at most ${MAX_AUDIT}); click a row for the record`);
    return;
  }
  let shown = 0;
  for (const row of rows) if (!row.hidden) shown++;
  setText($('audit-count'), `${shown} shown of ${rows.length} kept; click a row for the record`);
}

/** Drops the oldest rows past MAX_AUDIT, order traffic before the last KEEP_STATE `state` rows. */
function trimAudit(body) {
  let over = body.rows.length - MAX_AUDIT;
  if (over <= 0) return;
  let states = body.querySelectorAll('tr[data-kind="state"]').length;
  for (let i = body.rows.length - 1; i >= 0 && over > 0; i--) {
    const isState = body.rows[i].dataset.kind === 'state';
    if (isState && states <= KEEP_STATE) continue;
    if (isState) states--;
    body.deleteRow(i);
    over--;
  }
}

function auditRow(r) {
  const text = el('td', { class: 'audit-text', text: visible(r.text ?? '') });
  const row = el('tr', {
    class: 'audit-row',
    dataset: {
      kind: r.kind ?? '', seq: r.seq, flag: auditFlag(r),
      search: `${r.plugin ?? ''} ${r.kind ?? ''} ${r.text ?? ''}`.toLowerCase(),
    },
    on: {
      // The whole record, on demand (most rows are never opened).
      click: (e) => {
        if (e.target.closest('pre')) return; // selecting text in the record must not close it
        const open = text.querySelector('pre');
        if (open) open.remove();
        else text.append(el('pre', { text: recordText(r) }));
      },
    },
  },
    el('td', { class: 'num', text: num(r.seq) }),
    el('td', auditTime(r.ts)),
    el('td', { text: r.plugin ? visible(r.plugin) : '—' }),
    el('td', { class: 'kind', text: visible(r.kind ?? '') }),
    text);
  row.hidden = !auditMatches(row);
  return row;
}

/**
 * A record as pretty JSON; a `detail` holding JSON text (a load's grant and config, say) is
 * shown parsed under it as well.
 */
function recordText(r) {
  const record = r.record ?? r;
  let out = JSON.stringify(record, null, 2);
  const detail = record && typeof record === 'object' ? record.detail : undefined;
  if (typeof detail === 'string' && /^\s*[[{]/.test(detail)) {
    try {
      out += `\n\ndetail, parsed:\n${JSON.stringify(JSON.parse(detail), null, 2)}`;
    } catch {
      // Not JSON after all (or cut at the stream's length cap): the string above is all.
    }
  }
  return out;
}

/** `bad` for a record an operator looks for: a refused intent, a rejected order, a failure. */
function auditFlag(r) {
  const rec = r.record && typeof r.record === 'object' ? r.record : {};
  if (r.kind === 'risk' && rec.decision !== undefined && rec.decision !== 'approved') return 'bad';
  if (r.kind === 'order' && rec.state === 'rejected') return 'bad';
  if (r.kind === 'refusals_suppressed') return 'bad';
  if (r.kind === 'response' && Number(rec.status) >= 400) return 'bad';
  return '';
}

/** An audit record's time cell: `ts` is ms (the spec) or the log's RFC 3339 text (the host). */
function auditTime(ts) {
  if (typeof ts === 'number') return { text: clock(ts), title: isoTime(ts) };
  const text = String(ts ?? '');
  const m = /T(\d\d:\d\d:\d\d(?:\.\d+)?)/.exec(text);
  return { text: m ? m[1] : visible(text), title: visible(text) };
}

export function setAuditFilter(text) {
  auditFilter = text.toLowerCase().split(/\s+/).filter(Boolean);
  for (const row of $('audit').tBodies[0].rows) row.hidden = !auditMatches(row);
  auditCount();
}

// ---------------------------------------------------------------------------------------------

/** Draws one snapshot. `first`: the first of a connection (full curves, last 200 audit records). */
export function renderSnapshot(snap, first) {
  renderAccount(snap);
  renderPlugins(snap.plugins || [], snap.ts, snap.account ? snap.account.state : null);
  updateCurves(snap, first);
  renderPrices(snap.prices || [], snap.ts || Date.now());
  renderFeeds(snap.feeds ?? null);
  renderRates(snap.rate_limits ?? null);
  renderAudit(snap.audit || [], first);
  $('audit-none').hidden = snap.audit_kept !== false;
}

/** Sets up what does not depend on a snapshot (bars, resizing, the filter). */
export function initLive() {
  $('breaker-bar').replaceWith(breakerBar.node);
  breakerBar.node.id = 'breaker-bar';
  fitWidth($('pnl-chart'), () => plot, 260);
  $('audit-filter').addEventListener('input', (e) => setAuditFilter(e.target.value));
}

/** Forgets everything shown (signing out): the next sign-in may be another host. */
export function resetLive() {
  for (const c of cards.values()) c.node.remove();
  cards.clear();
  curves.clear();
  if (plot) plot.destroy();
  plot = null;
  plotKeys = '';
  for (const r of priceRows.values()) r.node.remove();
  priceRows.clear();
  feedsSig = '';
  ratesSig = '';
  unownedSig = '';
  $('unowned').hidden = true;
  auditLastSeq = -1;
  $('audit').tBodies[0].replaceChildren();
}
