// What the operator does: halt and resume (the account, a plugin), unload, promote, reload with a
// file, and load a new plugin after reading what `plugin inspect` says about it.
//
// Every action asks first in `#confirm` (a <dialog>, not window.confirm: it can hold the
// details and the unload's orders choice) and shows the host's answer in `#answer`, class `ok`
// or `error`. Every body says `"by": "console"`, so the audit log names who asked.

import { el, api, fileBase64, replaceChildren, visible, mib, clock, NONE } from './util.js';

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

/**
 * Shows an answer: `ok` true (class ok), false (class error) or 'pending' (work under way, not
 * yet an answer), a summary, and the host's answer (JSON) when there is one.
 */
export function answer(ok, text, data) {
  const box = $('answer');
  box.className = ok === 'pending' ? 'pending' : ok ? 'ok' : 'error';
  box.hidden = false;
  const parts = [el('span', { class: 'answer-time', text: `${clock(Date.now())} UTC ` }), el('span', { text: visible(text) })];
  if (ok && data && typeof data === 'object') {
    parts.push(el('code', { class: 'answer-data', text: ` ${JSON.stringify(data)}` }));
  }
  replaceChildren(box, parts);
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
    ? [inspection(inspected.data)]
    : [el('p', { class: 'fault', text: `The host could not inspect it: ${visible(inspected.error)}` })];
  const target = staged ? `the staged copy of "${visible(name)}"` : `"${visible(name)}"`;
  if (!(await ask(`Reload ${target} with ${visible(file.name)} (${mib(file.size)})?`, { details, yes: 'Reload' }))) {
    $('answer').hidden = true; // asked and declined: nothing happened, nothing to report
    return;
  }
  await send(`Reload ${visible(name)}${staged ? ' (staged)' : ''}`, 'POST', `/plugins/${enc(name)}/reload`, {
    wasm_base64: wasm, staged, by: BY,
  });
}

// ---------------------------------------------------------------------------------------------
// Inspect and load

/** What `plugin inspect` shows, as a table: from the JSON of `plugin inspect --json`. */
export function inspection(r) {
  const m = r.manifest;
  const perms = (m && m.permissions) || {};
  const names = (v) => (v && v.length ? v.map((x) => visible(String(x))).join(', ') : 'none');
  const rows = [];
  const row = (k, v, cls) => rows.push(el('tr', {}, el('th', { text: k }), el('td', { class: cls, text: v })));
  if (m) {
    row('name', `${visible(m.name)} ${visible(m.version)}`);
    if (m.description) row('about', visible(m.description));
    row('authors', m.authors && m.authors.length ? names(m.authors) : '(none given)');
    if (m.language) row('language', visible(m.language));
  } else if (r.manifest_error) {
    row('manifest', `unreadable: ${visible(r.manifest_error)}`, 'fault');
  } else {
    row('manifest', 'none: the plugin is granted nothing (no instruments, channels or orders)', 'fault');
  }
  row('size', `${r.size} bytes (${mib(r.size)})`);
  row('sha256', r.sha256 || NONE, 'hash');
  const sig = r.signature || {};
  let signature = 'none (unsigned)';
  if (sig.status === 'valid') {
    const trust = sig.trusted === true ? ' (trusted)' : sig.trusted === false ? ' (NOT among the trusted publishers)' : ' (trust not checked)';
    signature = `valid, by ${visible(sig.signer)}${trust}`;
  } else if (sig.status === 'invalid') {
    signature = `INVALID: ${visible(sig.reason)}`;
  }
  row('signature', signature, sig.status === 'invalid' || sig.trusted === false ? 'fault' : null);
  const contract = r.contract ? visible(r.contract) : '(no tradebox:strategy import)';
  row('contract', `${contract}: ${r.contract_served ? 'served by this host' : 'NOT served by this host'} (${visible(r.host_contract || NONE)})`,
    r.contract_served ? null : 'fault');
  if (m) {
    row('instruments', names(perms.instruments));
    row('channels', names(perms.channels));
    // The manifest says order_types; the spec's word is order kinds.
    row('order kinds', names(perms.order_types || perms.order_kinds));
    const limits = [];
    if (perms.max_orders_per_sec !== undefined && perms.max_orders_per_sec !== null) limits.push(`at most ${perms.max_orders_per_sec} orders/s`);
    if (perms.max_order_notional !== undefined && perms.max_order_notional !== null) limits.push(`orders up to ${perms.max_order_notional} notional`);
    if (limits.length) row('limits asked', limits.join('; '));
    const config = Object.entries(m.config || {});
    for (const [i, [key, s]] of config.entries()) {
      const d = s.default === undefined || s.default === null ? 'required' : `default ${JSON.stringify(s.default)}`;
      row(i === 0 ? 'config' : '', `${visible(key)} (${visible(s.type || '')}, ${d}): ${visible(s.description || '')}`);
    }
  }
  const foreign = (r.imports || []).filter((i) => !String(i.name).startsWith('tradebox:') && !String(i.name).startsWith('wasi:'));
  if (foreign.length) row('imports', `OUTSIDE what this host serves: ${names(foreign.map((i) => i.name))}`, 'fault');
  const verdict = r.verdict || {};
  const ok = 'Ok' in verdict;
  row('verdict', ok ? 'this host can load it (grant what it requests below)' : `refused: ${visible(verdict.Err)}`, ok ? 'ok-text' : 'fault');
  return el('table', { class: 'kv inspect-table' }, rows);
}

/** The instruments to prefill: the manifest's request, a `{setting}` placeholder filled from its default. */
function requestedInstruments(m) {
  if (!m || !m.permissions) return [];
  return (m.permissions.instruments || []).map((pattern) => {
    const key = /^\{(.+)\}$/.exec(pattern);
    if (!key) return pattern;
    const setting = m.config && m.config[key[1]];
    // An empty default means "none" (the operator names one): better an empty field than `{symbol}`.
    return setting && typeof setting.default === 'string' ? setting.default : '';
  }).filter((i) => i !== '');
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
  const staged = $('load-staged').checked;
  const verdict = pending.inspection.verdict || {};
  const details = [
    el('table', { class: 'kv' },
      el('tr', {}, el('th', { text: 'file' }), el('td', { text: `${visible(pending.file.name)} (${pending.inspection.size} bytes)` })),
      el('tr', {}, el('th', { text: 'sha256' }), el('td', { class: 'hash', text: pending.inspection.sha256 || NONE })),
      el('tr', {}, el('th', { text: 'instruments granted' }), el('td', { text: instruments.length ? instruments.map(visible).join(', ') : 'none' })),
      el('tr', {}, el('th', { text: 'config' }), el('td', {}, el('pre', { text: JSON.stringify(config, null, 2) }))),
      el('tr', {}, el('th', { text: 'venue' }), el('td', { text: staged ? 'the staging venue (not live)' : 'LIVE: the host\'s venue' }))),
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
  $('answer').hidden = true;
  if ($('confirm').open) $('confirm').close();
}
