// tradebox operator console: the entry module. Signs in (the admin token, kept in sessionStorage
// for this tab only), opens the live stream and hands its snapshots to live.js; the buttons are
// wired to actions.js, the report viewer to report.js.
//
// Modules (all served under /console/): app.js, util.js, stream.js, live.js, actions.js,
// report.js. uPlot is a classic script loaded before this one (global `uPlot`).

import { token, onUnauthorized } from './util.js';
import { openStream } from './stream.js';
import { renderSnapshot, initLive, resetLive, setCardActions } from './live.js';
import {
  initActions, resetActions, updateHost, haltPlugin, resumePlugin, unloadPlugin, promotePlugin, reloadPlugin, answer,
} from './actions.js';
import { initReports } from './report.js';

const $ = (id) => document.getElementById(id);

/**
 * Snapshot interval asked of the host: 500 ms (the spec's default), or the page's
 * `?interval_ms=N` (50..5000: the host's range) for a faster or calmer page.
 */
const INTERVAL_MS = (() => {
  const asked = Number(new URLSearchParams(location.search).get('interval_ms'));
  return Number.isInteger(asked) && asked >= 50 && asked <= 5000 ? asked : 500;
})();

let stream = null;
let signedIn = false;

function showSignIn(error) {
  signedIn = false;
  document.title = 'tradebox console';
  $('console-view').hidden = true;
  $('sign-in-view').hidden = false;
  $('sign-in').disabled = false;
  $('sign-in-error').hidden = !error;
  $('sign-in-status').textContent = '';
  $('token').focus();
}

function showConsole() {
  signedIn = true;
  $('sign-in-view').hidden = true;
  $('console-view').hidden = false;
  $('sign-in-error').hidden = true;
  $('token').value = ''; // the token lives in sessionStorage, not in a form field
}

function setConnection(state, detail) {
  const node = $('connection');
  node.textContent = state;
  node.className = `conn-${state}`;
  node.title = detail || '';
  $('connection-detail').textContent = detail || '';
  // What is on screen is not live while the stream is down: dimmed, so nobody trades on it.
  $('content').classList.toggle('not-live', state !== 'live');
  $('top').classList.toggle('not-live', state !== 'live');
}

/** Stops the stream and forgets what was shown. */
function stop() {
  if (stream) stream.close();
  stream = null;
  resetLive();
  resetActions();
}

/** Signing in is opening the stream: the host's answer to it says whether the token is good. */
function start() {
  stop();
  $('sign-in').disabled = true;
  $('sign-in-error').hidden = true;
  $('sign-in-status').textContent = 'signing in…';
  stream = openStream({
    intervalMs: INTERVAL_MS,
    onOpen: () => {
      if (!signedIn) showConsole();
    },
    onSnapshot: (snapshot, first) => {
      try {
        updateHost(snapshot);
        renderSnapshot(snapshot, first);
      } catch (e) {
        // A snapshot the page cannot draw must not drop the stream (that would retry forever).
        console.error('snapshot not drawn', e, snapshot);
      }
    },
    onStatus: (state, detail) => {
      setConnection(state, detail);
      if (state === 'ended') {
        // The host stopped or restarted (or never answered). The token is forgotten rather
        // than sent again by itself: another program may answer at this address now.
        const was = signedIn;
        token.clear();
        stop();
        showSignIn(false);
        $('sign-in-status').textContent = was
          ? `The connection to the host ended (${detail}). Sign in again with the token of the running host.`
          : `Cannot reach the host (${detail}).`;
      }
    },
    onUnauthorized: () => {
      // The token was refused (a wrong one, or the host rotated it): back to sign-in.
      token.clear();
      stop();
      showSignIn(true);
    },
    onRefused: (status, text) => {
      const why = `the host answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}`;
      if (signedIn) answer(false, `Live stream: ${why}`);
      else $('sign-in-status').textContent = why;
    },
  });
}

function signOut() {
  token.clear();
  stop();
  showSignIn(false);
}

function init() {
  initLive();
  initActions();
  initReports();
  setCardActions({
    halt: haltPlugin, resume: resumePlugin, unload: unloadPlugin, promote: promotePlugin, reload: reloadPlugin,
  });
  // Any request answered 401 (an action, not only the stream) means the token is no longer good.
  onUnauthorized(() => {
    token.clear();
    stop();
    showSignIn(true);
  });

  $('sign-in-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('token').value.trim();
    if (!t) return;
    token.set(t);
    start();
  });
  $('sign-out').addEventListener('click', signOut);

  if (token.get()) start(); // a reload of the tab keeps the session
  else showSignIn(false);
}

init();
