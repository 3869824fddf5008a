// What the operator does: halt and resume (the account, a plugin), unload, promote, reload with a
// file, and load a new plugin after reading what `plugin inspect` says about it.
//
// Every action asks first in `#confirm` (a <dialog>, not window.confirm: it can hold the
// details and the unload's orders choice) and shows the host's answer in `#answer`, class `ok`
// or `error`. Every body says `"by": "console"`, so the audit log names who asked.

import { el, api, fileBase64, replaceChildren, visible, mib, clock, clipped, hostInfo, NONE } from './util.js';

const $ = (id) => document.getElementById(id);
const BY = 'console';

// ---------------------------------------------------------------------------------------------
// The confirm dialog and the answer line

/**
 * Asks. `text`: the question; `details`: nodes shown under it; `leaveOrders`: show the unload's
 * "leave its open orders working" checkbox. Resolves to null (no) or {leaveOrders}.
 */
export function ask(text, { details = [], leaveOrders = false, yes = 'Yes', danger = false } = {}) {
  const dialog = $('confirm');
  if (dialog.open) return Promise.resolve(null); // one question at a time
  // Signed out while the question was being prepared (an inspection under way): nobody to ask.
  if ($('console-view').hidden) return Promise.resolve(null);
  $('confirm-text').textContent = text;
  replaceChildren($('confirm-details'), details);
  $('confirm-leave-orders').checked = false;
  $('confirm-leave-orders-row').hidden = !leaveOrders;
  const yesButton = $('confirm-yes');
  yesButton.textContent = yes;
  yesButton.classList.toggle('danger', danger);
  return new Promise((resolve) => {
    let done = false;
    const finish = (answer) => {
      if (done) return;
      done = true;
      yesButton.removeEventListener('click', onYes);
      $('confirm-no').removeEventListener('click', onNo);
      dialog.removeEventListener('cancel', onCancel);
      dialog.removeEventListener('close', onClose);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onYes = () => finish({ leaveOrders: $('confirm-leave-orders').checked });
    const onNo = () => finish(null);
    const onCancel = (e) => {
      e.preventDefault(); // Escape: answered as "no", closed by finish
      finish(null);
    };
    // Closed any other way (signed out by a refused token meanwhile): a "no", and this
    // question's listeners go, so a later dialog's "yes" cannot also answer this one.
    const onClose = () => finish(null);
    yesButton.addEventListener('click', onYes);
    $('confirm-no').addEventListener('click', onNo);
    dialog.addEventListener('cancel', onCancel);
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    // The safe answer has the focus: Enter on a dialog that just opened must not halt anything.
    $('confirm-no').focus();
  });
}

/** How long an ok answer stays (an error stays until closed or replaced). */
const ANSWER_OK_MS = 15000;
let answerTimer = null;

/** A JSON answer as `key: value` pairs (nested values as compact JSON, long ones clipped). */
function answerPairs(data) {
  const value = (v) => {
    if (v === null || v === undefined) return NONE;
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(parseFloat(v.toPrecision(6)));
    const t = typeof v === 'string' ? v : JSON.stringify(v);
    return t.length > 120 ? `${t.slice(0, 120)}…` : t;
  };
  return Object.entries(data).map(([k, v]) =>
    el('span', { class: 'answer-pair' }, el('span', { class: 'answer-key', text: `${visible(k)}: ` }), visible(value(v))));
}

/** Hides the answer line. */
export function clearAnswer() {
  clearTimeout(answerTimer);
  answerTimer = null;
  $('answer').hidden = true;
}

/**
 * Shows an answer: `ok` true (class ok), false (class error) or 'pending' (work under way, not
 * yet an answer), a summary, and the host's answer (JSON, as `key: value` pairs) when there is
 * one. An ok answer goes by itself after ANSWER_OK_MS; every one has a close button.
 */
export function answer(ok, text, data) {
  const box = $('answer');
  clearTimeout(answerTimer);
  answerTimer = null;
  box.className = ok === 'pending' ? 'pending' : ok ? 'ok' : 'error';
  box.hidden = false;
  const parts = [el('span', { class: 'answer-time', text: `${clock(Date.now())} UTC ` }), el('span', { class: 'answer-text', text: visible(text) })];
  if (ok === true && data && typeof data === 'object' && !Array.isArray(data)) {
    parts.push(el('span', { class: 'answer-data' }, answerPairs(data)));
  } else if (ok === true && data !== null && data !== undefined && typeof data !== 'object') {
    parts.push(el('span', { class: 'answer-data', text: ` ${visible(String(data)).slice(0, 300)}` }));
  }
  parts.push(el('button', {
    type: 'button', class: 'answer-close', text: '×', title: 'close this answer',
    attrs: { 'aria-label': 'close this answer' }, on: { click: clearAnswer },
  }));
  replaceChildren(box, parts);
  if (ok === true) {
    // The fade (CSS) starts again with each answer: restarted by dropping the animation once.
    box.style.animation = 'none';
    void box.offsetWidth;
    box.style.animation = '';
    answerTimer = setTimeout(clearAnswer, ANSWER_OK_MS);
  }
}

/** Sends a request and shows its answer; resolves to the api() result. */
async function send(what, method, path, body) {
  answer('pending', `${what}: sent, waiting for the host…`);
  const r = await api(method, path, body);
  if (r.ok) answer(true, `${what}: done.`, r.data);
  else answer(false, `${what}: ${r.error}`);
  return r;
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------------
// The account and the plugins

export async function haltAccount() {
  if (!(await ask('Halt the whole account? Every plugin stops trading and open orders are cancelled.', { yes: 'Halt the account', danger: true }))) return;
  await send('Halt the account', 'POST', '/halt', { by: BY });
}

export async function resumeAccount() {
  if (!(await ask('Resume the account? Plugins that are not halted themselves may trade again.', { yes: 'Resume the account' }))) return;
  await send('Resume the account', 'POST', '/resume', { by: BY });
}

export async function haltPlugin(name) {
  if (!(await ask(`Halt the plugin "${visible(name)}"? Its open orders are cancelled.`, { yes: 'Halt', danger: true }))) return;
  await send(`Halt ${visible(name)}`, 'POST', '/halt', { plugin: name, by: BY });
}

export async function resumePlugin(name) {
  if (!(await ask(`Resume the plugin "${visible(name)}"?`, { yes: 'Resume' }))) return;
  await send(`Resume ${visible(name)}`, 'POST', '/resume', { plugin: name, by: BY });
}

export async function unloadPlugin(name) {
  const go = await ask(`Unload the plugin "${visible(name)}"? It stops and is removed from the host.`, {
    leaveOrders: true, yes: 'Unload', danger: true,
  });
  if (!go) return;
  const orders = go.leaveOrders ? 'leave' : 'cancel';
  await send(`Unload ${visible(name)}`, 'DELETE', `/plugins/${enc(name)}?orders=${orders}&by=${BY}`);
}

export async function promotePlugin(name) {
  if (!(await ask(`Promote the staged copy of "${visible(name)}"? It replaces the running plugin of that name and trades on the live venue.`, { yes: 'Promote', danger: true }))) return;
  await send(`Promote ${visible(name)}`, 'POST', `/plugins/${enc(name)}/promote`, { by: BY });
}

/** Reload with a file: inspect it first, so the question says what the new version is. */
export async function reloadPlugin(name, staged, file) {
  answer('pending', `Reading ${visible(file.name)}…`);
  let wasm;
  try {
    wasm = await fileBase64(file);
  } catch (e) {
    answer(false, `Reading ${visible(file.name)}: ${e.message || e}`);
    return;
  }
  answer('pending', `Inspecting ${visible(file.name)}…`);
  const inspected = await api('POST', '/plugins/inspect', { wasm_base64: wasm });
  const details = inspected.ok
    ? [inspection(inspected.data, { context: 'reload' })]
    : [el('p', { class: 'fault', text: `The host could not inspect it: ${visible(inspected.error)}` })];
  // A running plugin's new version may go to the staging venue instead (the running one keeps
  // trading until the staged copy is promoted): only where the host has one.
  let stageBox = null;
  if (!staged) {
    const noStaging = hostInfo.staging === false;
    stageBox = el('input', {
      type: 'checkbox', class: 'reload-staged', disabled: noStaging,
      title: noStaging ? STAGING_OFF : null,
    });
    details.push(el('p', {},
      el('label', { class: 'check', title: noStaging ? STAGING_OFF : null }, stageBox,
        ' staged: run the new version on the staging venue; this one keeps trading until it is promoted')));
  }
  const target = staged ? `the staged copy of "${visible(name)}"` : `"${visible(name)}"`;
  const go = await ask(`Reload ${target} with ${visible(file.name)} (${mib(file.size)})?`, { details, yes: 'Reload' });
  const toStaging = staged || (stageBox !== null && stageBox.checked && !stageBox.disabled);
  if (!go) {
    clearAnswer(); // asked and declined: nothing happened, nothing to report
    return;
  }
  await send(`Reload ${visible(name)}${toStaging ? ' (staged)' : ''}`, 'POST', `/plugins/${enc(name)}/reload`, {
    wasm_base64: wasm, staged: toStaging, by: BY,
  });
}

// ---------------------------------------------------------------------------------------------
// Inspect and load

/** The title of a staged choice the host cannot honour. */
const STAGING_OFF = 'this host has no staging venue ([staging] in its config): nothing can run staged';

/** The signature's line (the inspection table and the load question say it alike). */
function signatureLine(sig = {}) {
  if (sig.status === 'valid') {
    const trust = sig.trusted === true ? ' (trusted)' : sig.trusted === false ? ' (NOT among the trusted publishers)' : ' (trust not checked)';
    return { text: `valid, by ${visible(sig.signer)}${trust}`, fault: sig.trusted === false };
  }
  if (sig.status === 'invalid') return { text: `INVALID: ${visible(sig.reason)}`, fault: true };
  return { text: 'none (unsigned)', fault: false };
}

function contractLine(r) {
  const contract = r.contract ? visible(r.contract) : '(no tradebox:strategy import)';
  return {
    text: `${contract}: ${r.contract_served ? 'served by this host' : 'NOT served by this host'} (${visible(r.host_contract || NONE)})`,
    fault: !r.contract_served,
  };
}

function verdictLine(r, context) {
  const verdict = r.verdict || {};
  if (!('Ok' in verdict)) return { text: `refused: ${visible(verdict.Err)}`, fault: true };
  return {
    text: context === 'reload'
      ? 'this host can run it (the plugin keeps the grant it has; this version gets only what it requests of it)'
      : context === 'confirm'
        ? 'this host can load it'
        : 'this host can load it (grant it instruments in the form below)',
    fault: false,
  };
}

/** One requested instrument in words: a `{setting}` placeholder says which setting names it. */
function instrumentWords(pattern, m) {
  const p = visible(String(pattern));
  const key = /^\{(.+)\}$/.exec(String(pattern));
  if (key) {
    const setting = m.config && m.config[key[1]];
    const d = setting && typeof setting.default === 'string' && setting.default !== ''
      ? ` (default ${JSON.stringify(visible(setting.default))})` : ' (no default: name it in the config)';
    return `${p}: the instrument the config's ${JSON.stringify(visible(key[1]))} names${d}`;
  }
  if (String(pattern).includes('*')) return `${p}: a pattern (grant the instruments you mean by name)`;
  return p;
}

/**
 * What `plugin inspect` shows, as a table: from the JSON of `plugin inspect --json`. What the
 * host found (verdict, signature, contract, hash) comes first; the manifest's own texts, which
 * its author writes and may make as long as they like, come after, clipped. `context`: 'load'
 * (the load form follows), 'reload' (a running plugin's new version), 'confirm'.
 */
export function inspection(r, { context = 'load' } = {}) {
  const m = r.manifest;
  const perms = (m && m.permissions) || {};
  const names = (v) => (v && v.length ? v.map((x) => visible(String(x))).join(', ') : 'none');
  const rows = [];
  const row = (k, v, cls) => rows.push(el('tr', {}, el('th', { text: k }),
    typeof v === 'string' ? el('td', { class: cls, text: v }) : el('td', { class: cls }, v)));
  const verdict = verdictLine(r, context);
  row('verdict', verdict.text, verdict.fault ? 'fault' : 'ok-text');
  const sig = signatureLine(r.signature);
  row('signature', sig.text, sig.fault ? 'fault' : null);
  const contract = contractLine(r);
  row('contract', contract.text, contract.fault ? 'fault' : null);
  const foreign = (r.imports || []).filter((i) => !String(i.name).startsWith('tradebox:') && !String(i.name).startsWith('wasi:'));
  if (foreign.length) row('imports', `OUTSIDE what this host serves: ${names(foreign.map((i) => i.name))}`, 'fault');
  row('sha256', r.sha256 || NONE, 'hash');
  row('size', `${r.size} bytes (${mib(r.size)})`);
  if (m) {
    row('name', clipped(`${m.name} ${m.version}`, 120));
    const list = perms.instruments || [];
    row('instruments', list.length
      ? el('span', {}, list.slice(0, 50).flatMap((x, i) => [i ? el('br') : null, clipped(instrumentWords(x, m), 200)]),
        list.length > 50 ? [el('br'), `… and ${list.length - 50} more`] : null)
      : 'none');
    row('channels', clipped(names(perms.channels)));
    // The manifest says order_types; the spec's word is order kinds.
    row('order kinds', clipped(names(perms.order_types || perms.order_kinds)));
    const limits = [];
    if (perms.max_orders_per_sec !== undefined && perms.max_orders_per_sec !== null) limits.push(`at most ${perms.max_orders_per_sec} orders/s`);
    if (perms.max_order_notional !== undefined && perms.max_order_notional !== null) limits.push(`orders up to ${perms.max_order_notional} notional`);
    if (limits.length) row('limits asked', clipped(limits.join('; ')));
    row('about', m.description ? clipped(m.description) : '(none given)', 'manifest-text');
    row('authors', m.authors && m.authors.length ? clipped(names(m.authors)) : '(none given)', 'manifest-text');
    if (m.language) row('language', clipped(m.language, 80));
    const config = Object.entries(m.config || {});
    for (const [i, [key, s]] of config.slice(0, 100).entries()) {
      const spec = s && typeof s === 'object' ? s : {};
      const d = spec.default === undefined || spec.default === null ? 'required' : `default ${JSON.stringify(spec.default)}`;
      row(i === 0 ? 'config' : '', clipped(`${key} (${spec.type || ''}, ${d}): ${spec.description || ''}`), 'manifest-text');
    }
    if (config.length > 100) row('', `… and ${config.length - 100} more settings`, 'muted');
  } else if (r.manifest_error) {
    row('manifest', clipped(`unreadable: ${r.manifest_error}`), 'fault');
  } else {
    row('manifest', 'none: the plugin is granted nothing (no instruments, channels or orders)', 'fault');
  }
  return el('table', { class: 'kv inspect-table' }, rows);
}

/**
 * The instruments to prefill: the manifest's exact symbols, and a `{setting}` placeholder filled
 * from its default when that is a non-empty string. A pattern (anything with `*`) is never
 * prefilled: granting it would be a choice the operator did not make.
 */
function requestedInstruments(m) {
  if (!m || !m.permissions) return [];
  return (m.permissions.instruments || []).map((pattern) => {
    const p = String(pattern);
    const key = /^\{(.+)\}$/.exec(p);
    if (!key) return p.includes('*') || p.includes('{') || p.includes('}') ? '' : p;
    const setting = m.config && m.config[key[1]];
    const d = setting && typeof setting.default === 'string' ? setting.default.trim() : '';
    return d.includes('*') ? '' : d;
  }).filter((i) => i !== '');
}

/** The snapshot's word on the host: the staged load is off where there is no staging venue. */
export function updateHost(snap) {
  hostInfo.venue = typeof snap.venue === 'string' ? snap.venue : '';
  hostInfo.staging = typeof snap.staging === 'boolean' ? snap.staging : null;
  const box = $('load-staged');
  const off = hostInfo.staging === false;
  if (box.disabled !== off) {
    box.disabled = off;
    if (off) box.checked = false;
    const title = off ? STAGING_OFF : '';
    box.title = title;
    box.parentElement.title = title;
    box.parentElement.classList.toggle('off', off);
  }
}

let pending = null; // {wasm, file, inspection} of the file being loaded

async function onLoadFile(e) {
  const file = e.target.files && e.target.files[0];
  if (!file) return;
  const panel = $('inspect');
  panel.hidden = true;
  pending = null;
  setText('load-status', `Reading ${visible(file.name)} (${mib(file.size)})…`);
  let wasm;
  try {
    wasm = await fileBase64(file);
  } catch (err) {
    setText('load-status', '');
    answer(false, `Reading ${visible(file.name)}: ${err.message || err}`);
    return;
  }
  setText('load-status', `Inspecting ${visible(file.name)}…`);
  const r = await api('POST', '/plugins/inspect', { wasm_base64: wasm });
  setText('load-status', '');
  if (!r.ok) {
    answer(false, `Inspect ${visible(file.name)}: ${r.error}`);
    return;
  }
  pending = { wasm, file, inspection: r.data };
  const m = r.data.manifest;
  replaceChildren($('inspect-report'), inspection(r.data));
  $('load-name').value = m && m.name ? m.name : file.name.replace(/\.wasm$/i, '');
  $('load-instruments').value = requestedInstruments(m).join(', ');
  $('load-config').value = '{}';
  $('load-staged').checked = false;
  $('load-file-name').textContent = `${visible(file.name)}, ${mib(file.size)}`;
  panel.hidden = false;
}

function setText(id, text) {
  const node = $(id);
  node.textContent = text;
  node.hidden = !text;
}

async function onLoadConfirm() {
  if (!pending) {
    answer(false, 'Load: choose a .wasm file first.');
    return;
  }
  const name = $('load-name').value.trim();
  if (!name) {
    answer(false, 'Load: give the plugin a name.');
    return;
  }
  const instruments = $('load-instruments').value.split(',').map((s) => s.trim()).filter(Boolean);
  let config;
  try {
    config = JSON.parse($('load-config').value.trim() || '{}');
  } catch (err) {
    answer(false, `Load: the config is not valid JSON: ${err.message}`);
    return;
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    answer(false, 'Load: the config must be a JSON object of settings, like {"fast": 10}.');
    return;
  }
  const staged = $('load-staged').checked && !$('load-staged').disabled;
  const verdict = pending.inspection.verdict || {};
  const sig = signatureLine(pending.inspection.signature);
  const contract = contractLine(pending.inspection);
  const ok = verdictLine(pending.inspection, 'confirm');
  const venue = staged ? "the staging venue (not the host's own)"
    : `the host's venue${hostInfo.venue ? ` (${visible(hostInfo.venue)})` : ''}`;
  const details = [
    el('table', { class: 'kv' },
      el('tr', {}, el('th', { text: 'file' }), el('td', { text: `${visible(pending.file.name)} (${pending.inspection.size} bytes)` })),
      el('tr', {}, el('th', { text: 'sha256' }), el('td', { class: 'hash', text: pending.inspection.sha256 || NONE })),
      el('tr', {}, el('th', { text: 'verdict' }), el('td', { class: ok.fault ? 'fault' : 'ok-text', text: ok.text })),
      el('tr', {}, el('th', { text: 'signature' }), el('td', { class: sig.fault ? 'fault' : null, text: sig.text })),
      el('tr', {}, el('th', { text: 'contract' }), el('td', { class: contract.fault ? 'fault' : null, text: contract.text })),
      el('tr', {}, el('th', { text: 'instruments granted' }), el('td', { text: instruments.length ? instruments.map(visible).join(', ') : 'none' })),
      el('tr', {}, el('th', { text: 'config' }), el('td', {}, el('pre', { text: JSON.stringify(config, null, 2) }))),
      el('tr', {}, el('th', { text: 'venue' }), el('td', { text: venue }))),
    'Err' in verdict ? el('p', { class: 'fault', text: `The inspection said it would be refused: ${visible(verdict.Err)}` }) : null,
  ];
  if (!(await ask(`Load "${visible(name)}"${staged ? ' on the staging venue' : ''}?`, { details, yes: 'Load', danger: !staged }))) return;
  // One load at a time: compiling takes a while, and a second click must not load it twice.
  $('load-confirm').disabled = true;
  const r = await send(`Load ${visible(name)}`, 'POST', '/plugins', {
    name, wasm_base64: pending.wasm, instruments, config, staged, by: BY,
  }).finally(() => {
    $('load-confirm').disabled = false;
  });
  if (r.ok) {
    pending = null;
    $('inspect').hidden = true;
    $('load-file').value = '';
  }
}

export function initActions() {
  $('halt-account').addEventListener('click', haltAccount);
  $('resume-account').addEventListener('click', resumeAccount);
  $('load-file').addEventListener('change', onLoadFile);
  $('load-confirm').addEventListener('click', onLoadConfirm);
  $('load-cancel').addEventListener('click', () => {
    pending = null;
    $('inspect').hidden = true;
    $('load-file').value = '';
  });
}

/** Forgets a half-done load (signing out). */
export function resetActions() {
  pending = null;
  $('inspect').hidden = true;
  $('load-file').value = '';
  clearAnswer();
  if ($('confirm').open) $('confirm').close();
}
