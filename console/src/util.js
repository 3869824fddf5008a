// Shared pieces of the console: building DOM from data, number and time formats (the same as the
// backtest report's, host/src/backtest/report/text.rs, so one figure never reads two ways), the
// plugin colours, the token and the one function that talks to the host.
//
// Everything the host sends is data: it reaches the page through textContent and attributes set
// with setAttribute/dataset, never through innerHTML (a plugin may be named `<img onerror=...>`).

// ---------------------------------------------------------------------------------------------
// DOM

/**
 * Creates an element. `props`: `class`, `text`, `title`, `hidden`, `dataset` (object), `attrs`
 * (object of attributes), `on` (object of event listeners); any other key is set as a property.
 * `children`: nodes or strings (strings become text nodes).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'attrs') for (const [a, v] of Object.entries(value)) node.setAttribute(a, v);
    else if (key === 'on') for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** Sets a node's text only when it changed: at 20 snapshots/s most figures do not. */
export function setText(node, text) {
  const t = String(text);
  if (node.textContent !== t) node.textContent = t;
}

/** Sets (or removes, on null) an attribute only when it changed. */
export function setAttr(node, name, value) {
  if (value === null || value === undefined) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, String(value));
  }
}

/** Adds `cls` and removes the other classes of `all` (state colours and the like). */
export function setClass(node, all, cls) {
  for (const c of all) if (c !== cls && node.classList.contains(c)) node.classList.remove(c);
  if (cls && !node.classList.contains(cls)) node.classList.add(cls);
}

/** Replaces a node's children (for small parts rebuilt only when their data changed). */
export function replaceChildren(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

/** A bar (a <meter>-like pair of divs, styled in style.css) filled to `fraction` (0..1). */
export function bar() {
  const fill = el('div', { class: 'bar-fill' });
  const node = el('div', { class: 'bar' }, fill);
  return {
    node,
    set(fraction, level) {
      const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
      const width = `${(f * 100).toFixed(1)}%`;
      // element.style from script is allowed by the CSP (style="..." in markup is not).
      if (fill.style.width !== width) fill.style.width = width;
      setClass(fill, ['warn', 'bad'], level || (f >= 0.9 ? 'bad' : f >= 0.7 ? 'warn' : null));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Formats

export const NONE = '—';

/** Money like the report's `money`: cents, or four significant digits under a cent. */
export function money(x) {
  if (x === null || x === undefined) return NONE;
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs === 0) return '0.00';
  if (abs >= 0.01) return x.toFixed(2);
  if (abs < 1e-12) return x.toExponential(3);
  const decimals = Math.min(15, Math.max(2, 3 - Math.floor(Math.log10(abs))));
  return x.toFixed(decimals);
}

/** Money with its sign always written (+1.20 / -0.40): for PnL. */
export function signedMoney(x) {
  const s = money(x);
  return x > 0 ? `+${s}` : s;
}

/** A price like the report's `price`: eight significant digits, at least two decimals. */
export function price(x) {
  if (x === null || x === undefined) return NONE;
  const abs = Math.abs(x);
  if (!Number.isFinite(x) || abs < 0.01) return money(x);
  const before = Math.floor(Math.log10(abs)) + 1;
  const decimals = Math.min(15, Math.max(2, 8 - before));
  const s = x.toFixed(decimals);
  const point = s.indexOf('.');
  if (point < 0) return s;
  const keep = Math.max(s.replace(/0+$/, '').length, point + 3);
  return s.slice(0, keep);
}

/**
 * A size or count. Sizes are lot multiples summed in binary floating point (0.05 + 0.1 reads
 * 0.15000000000000002): twelve significant digits drop that noise and keep any real lot.
 */
export function num(x) {
  if (x === null || x === undefined) return NONE;
  if (typeof x !== 'number' || Number.isInteger(x) || !Number.isFinite(x)) return String(x);
  return String(parseFloat(x.toPrecision(12)));
}

/** A fraction as a percentage with two decimals. */
export function percent(fraction) {
  if (fraction === null || fraction === undefined) return NONE;
  if (!Number.isFinite(fraction)) return String(fraction);
  return `${(fraction * 100).toFixed(2)}%`;
}

/** Bytes as MiB with one decimal. */
export function mib(bytes) {
  if (bytes === null || bytes === undefined) return NONE;
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** ms since the epoch as RFC 3339 UTC with milliseconds (the audit log's and the report's). */
export function isoTime(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return NONE;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms} ms` : d.toISOString();
}

/** ms since the epoch as the UTC time of day, `HH:MM:SS.mmm`: for the live tables. */
export function clock(ms) {
  const iso = isoTime(ms);
  return iso.length >= 23 ? iso.slice(11, 23) : iso;
}

/** A duration in ms, readably (850 ms, 12.3 s, 4 min 10 s, 2 h 05 min). */
export function duration(ms) {
  if (!Number.isFinite(ms)) return NONE;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/**
 * Text with control characters written as escapes (like the report's `visible`): a name or an
 * error cannot break a line or hide characters. Bidirectional overrides and invisible characters
 * (zero-width, BOM, separators: as the host's manifest check) are escaped too.
 */
export function visible(s) {
  return String(s).replace(/[\u0000-\u001f\u007f-\u009f\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g, (c) => {
    const code = c.charCodeAt(0);
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u{${code.toString(16)}}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Colours: the report's palette (host/src/backtest/report/charts.rs), by plugin index.

export const PALETTE = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
  '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
];
export const INK = '#282828';
export const colour = (index) => PALETTE[index % PALETTE.length];

/** A small coloured square, as the report's `.swatch`. */
export function swatch(c) {
  const s = el('span', { class: 'swatch' });
  s.style.background = c;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Files

/**
 * A file's bytes as base64, in chunks: String.fromCharCode over a 20 MB array at once overflows
 * the call stack, and one huge intermediate string doubles the memory. Each chunk is a multiple
 * of 3 bytes, so the chunks' base64 texts concatenate without padding in the middle.
 */
export async function fileBase64(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const CHUNK = 3 * 8192;
  const parts = [];
  for (let i = 0; i < bytes.length; i += CHUNK) {
    const slice = bytes.subarray(i, i + CHUNK);
    let binary = '';
    for (let j = 0; j < slice.length; j += 4096) {
      binary += String.fromCharCode.apply(null, slice.subarray(j, j + 4096));
    }
    parts.push(btoa(binary));
  }
  return parts.join('');
}

// ---------------------------------------------------------------------------------------------
// The token and the host

const TOKEN_KEY = 'tradebox-console-token';

/** The admin token: in sessionStorage only (gone when the tab closes), never a cookie or URL. */
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** The Authorization header with the token; none at all when signed out (nothing is sent unasked). */
export function authHeaders(extra = {}) {
  const t = token.get();
  return t ? { Authorization: `Bearer ${t}`, ...extra } : { ...extra };
}

/**
 * What the last snapshot said of the host, for the forms (actions.js): its venue's name and
 * whether it has a staging venue (`null`: not said, an older host).
 */
export const hostInfo = { venue: '', staging: null };

/**
 * A long text an author controls (a manifest's description, say), clipped to `max` characters
 * with an ellipsis; the title holds more of it (up to 4000 characters).
 */
export function clipped(text, max = 300) {
  const t = visible(text);
  if (t.length <= max) return el('span', { text: t });
  return el('span', {
    class: 'clipped', text: `${t.slice(0, max)}…`,
    title: t.length > 4000 ? `${t.slice(0, 4000)}… (${t.length} characters in all)` : t,
  });
}

// Called on any 401: the page goes back to sign-in (set by app.js).
let unauthorizedHandler = () => {};
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}
export function unauthorized() {
  unauthorizedHandler();
}

/**
 * One request to the admin API. Resolves to `{ok, status, data, error}`: `data` the parsed JSON
 * answer (or its text), `error` one readable line when not ok (the host's `{"error": ...}`, else
 * the status). Never throws: a network failure is an answer too.
 */
export async function api(method, path, body) {
  // Signed out (the stream ended, a 401): nothing goes to the host without a token the
  // operator gave in this session.
  if (!token.get()) return { ok: false, status: 0, data: null, error: 'not signed in (sign in again)' };
  const init = { method, headers: authHeaders(), cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    return { ok: false, status: 0, data: null, error: `cannot reach the host: ${e.message || e}` };
  }
  const text = await response.text().catch(() => '');
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's page, a plain-text error): kept as text.
  }
  if (response.status === 401) unauthorized();
  if (response.ok) return { ok: true, status: response.status, data, error: null };
  const error =
    data && typeof data === 'object' && typeof data.error === 'string'
      ? data.error
      : `${response.status} ${response.statusText}${typeof data === 'string' && data ? `: ${data.slice(0, 200)}` : ''}`;
  return { ok: false, status: response.status, data, error };
}
