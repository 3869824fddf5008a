// Guest SDK for tradebox strategy plugins written in JavaScript.
//
// A strategy is a class that extends `Strategy` and overrides the handlers it needs;
// `exportStrategy` turns it into the five exports of the `tradebox:strategy` world:
//
//     import { Strategy, exportStrategy, market, orders, views, feeds, info } from 'tradebox-sdk';
//
//     class Buyer extends Strategy {
//       constructor(config) {              // the plugin's JSON config, parsed ({} when none)
//         super(config);
//         const btc = views.findInstrument(config.symbol ?? 'BTC-USDT');
//         if (!btc) throw new Error('instrument not granted');   // refuses the load with this text
//         feeds.subscribe(btc.id, 'ticker');
//         this.btc = btc;
//       }
//       onTicker(t) { if (t.ask < 50000) orders.place(market(this.btc.id, 'buy', this.btc.minSize)); }
//     }
//
//     export const { init, onEvents, onTickers, snapshot, restore } = exportStrategy(Buyer);
//
// `tradebox plugin build DIR` bundles the strategy with this module (imported by the bare name
// `tradebox-sdk`; the copy inside the tradebox binary is the one used) and makes a component of
// it with componentize-js.
//
// Values are the component model's, as componentize-js hands them over: WIT names in camelCase
// (`bidSize`, `clientOrderId`), enums as their WIT strings (`'buy'`, `'post-only'`,
// `'partially-filled'`), events as `{ tag, val }`, an `option` as the value or `undefined`, and
// 64-bit integers (timestamps `ts`, timer ids, `now()`) as BigInt. A host function whose WIT
// result is an error throws: the denial is the thrown error's `payload` (see `denialOf`).
//
// `console.log` and `console.error` reach the plugin's log too (the host drains the component's
// locked-down stdout and stderr after every call); the functions below set the level.
//
// It has no dependencies and keeps to what SpiderMonkey inside the component offers.

import * as orders from 'tradebox:strategy/orders@0.1.0';
import * as views from 'tradebox:strategy/views@0.1.0';
import * as feeds from 'tradebox:strategy/feeds@0.1.0';
import * as timers from 'tradebox:strategy/timers@0.1.0';
import * as host from 'tradebox:strategy/host@0.1.0';

/** The host's interfaces, as imported: `orders.place(request)`, `views.openOrders()`, ... */
export { orders, views, feeds, timers, host };

/**
 * A trading strategy. Every handler does nothing by default, so a strategy overrides only what
 * it uses. Handlers run one at a time and should return quickly: the host gives each batch a CPU
 * deadline and stops an instance that overruns it.
 */
export class Strategy {
  /**
   * Builds the strategy from its config (the JSON object the operator gave, `{}` when none).
   * Subscribe to market data and set timers here. Throwing refuses the load with the message.
   */
  constructor(config) {
    this.config = config;
  }

  /** Best bid/ask and last price changed. Runs once per ticker on busy feeds: keep it small. */
  onTicker(_ticker) {}
  /** A new top-of-book snapshot. */
  onBook(_book) {}
  /** A public trade. */
  onTrade(_trade) {}
  /** A candle update (`confirmed` once the bar is closed). */
  onCandle(_candle) {}
  /** One of this plugin's orders changed state. */
  onOrder(_order) {}
  /** One of this plugin's orders filled (partly or fully). */
  onFill(_fill) {}
  /** This plugin's position changed. */
  onPosition(_position) {}
  /** An account balance changed. */
  onBalance(_balance) {}
  /** A timer set through `timers` fired. */
  onTimer(_timer) {}
  /** An intent was refused after it had been accepted. */
  onRiskDenied(_denial) {}
  /** A link to the venue went down or came back. */
  onConnectivity(_change) {}
  /** The plugin's or the account's trading state changed. */
  onTradingState(_change) {}
  /** After each batch, once every event in it has been handled: act on the newest state here. */
  onBatchEnd() {}

  /** State to hand over to the next version on hot reload (a Uint8Array; see `encodeJson`). */
  snapshot() {
    return new Uint8Array(0);
  }

  /**
   * Takes over the state of the previous version (after the constructor). Throwing refuses the
   * reload and the running version keeps trading. Open orders carry over (adopt them from
   * `views.openOrders()` in the constructor); timers and subscriptions do not.
   */
  restore(_bytes) {}
}

/** Routes a batch of events to the strategy's handlers, in order, then `onBatchEnd`. */
export function dispatch(strategy, events) {
  for (const event of events) {
    const e = event.val;
    switch (event.tag) {
      case 'ticker': strategy.onTicker(e); break;
      case 'book': strategy.onBook(e); break;
      case 'trade': strategy.onTrade(e); break;
      case 'candle': strategy.onCandle(e); break;
      case 'order': strategy.onOrder(e); break;
      case 'fill': strategy.onFill(e); break;
      case 'position': strategy.onPosition(e); break;
      case 'balance': strategy.onBalance(e); break;
      case 'timer': strategy.onTimer(e); break;
      case 'risk-denied': strategy.onRiskDenied(e); break;
      case 'connectivity': strategy.onConnectivity(e); break;
      case 'trading-state': strategy.onTradingState(e); break;
      default: break; // a kind of event from a newer contract: nothing handles it
    }
  }
  strategy.onBatchEnd();
}

/**
 * Routes a run of tickers delivered in columns (`ticker-columns`: five prices per ticker, bid,
 * bid size, ask, ask size, last) to `onTicker`, one ticker at a time and in order, exactly as
 * `dispatch` would for the same tickers as events. A short column ends the run.
 */
export function dispatchTickers(strategy, columns) {
  const { instrument, ts, prices } = columns;
  const n = Math.min(instrument.length, ts.length, Math.floor(prices.length / 5));
  for (let i = 0, p = 0; i < n; i++, p += 5) {
    strategy.onTicker({
      instrument: instrument[i],
      ts: ts[i],
      bid: prices[p],
      bidSize: prices[p + 1],
      ask: prices[p + 2],
      askSize: prices[p + 3],
      last: prices[p + 4],
    });
  }
  strategy.onBatchEnd();
}

/** The text of anything thrown: an Error's message, a string as it is. */
function errorText(e) {
  // A host refusal (a subscribe or place denied in the constructor) is its code and message,
  // not the engine's "[object Object]".
  const denial = denialOf(e);
  if (denial !== undefined) return `${denial.code}: ${denial.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * The component's exports for a `Strategy` subclass:
 * `export const { init, onEvents, onTickers, snapshot, restore } = exportStrategy(MyStrategy);`
 *
 * The instance is created by `init` and lives as long as the plugin instance. An error thrown
 * while handling events is logged through the host, then thrown on: the host counts the batch as
 * a failure, as it does a Rust plugin's panic.
 */
export function exportStrategy(StrategyClass) {
  let instance = null;
  const fail = (what, e) => {
    host.log('error', `plugin failed in ${what}: ${errorText(e)}${e instanceof Error && e.stack ? `\n${e.stack}` : ''}`);
    throw e;
  };
  return {
    init(configText) {
      let config;
      try {
        config = configText.trim() === '' ? {} : JSON.parse(configText);
      } catch (e) {
        // A string is what the component's `result<_, string>` carries back as the load error.
        throw `config: ${errorText(e)}`;
      }
      try {
        instance = new StrategyClass(config);
      } catch (e) {
        throw errorText(e);
      }
    },
    onEvents(events) {
      if (instance === null) return;
      try {
        dispatch(instance, events);
      } catch (e) {
        fail('on-events', e);
      }
    },
    onTickers(columns) {
      if (instance === null) return;
      try {
        dispatchTickers(instance, columns);
      } catch (e) {
        fail('on-tickers', e);
      }
    },
    snapshot() {
      if (instance === null) return new Uint8Array(0);
      let bytes;
      try {
        bytes = instance.snapshot();
      } catch (e) {
        fail('snapshot', e);
      }
      return bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes ?? []);
    },
    restore(bytes) {
      if (instance === null) throw 'restore called before init';
      try {
        instance.restore(bytes);
      } catch (e) {
        throw errorText(e);
      }
    },
  };
}

// ---- Order requests -------------------------------------------------------------------------

/** An order request of any kind; `price` is ignored (left out) for market orders. */
export function withKind(instrument, side, kind, price, size) {
  return { instrument, side, kind, price: kind === 'market' ? undefined : price, size, reduceOnly: false };
}

/** A limit order resting at `price`. */
export function limit(instrument, side, price, size) {
  return withKind(instrument, side, 'limit', price, size);
}

/** A post-only limit order: cancelled by the venue instead of taking liquidity. */
export function postOnly(instrument, side, price, size) {
  return withKind(instrument, side, 'post-only', price, size);
}

/** A market order. */
export function market(instrument, side, size) {
  return withKind(instrument, side, 'market', undefined, size);
}

/** The same request, allowed only to reduce the plugin's position. */
export function reduceOnly(request) {
  return { ...request, reduceOnly: true };
}

/**
 * The denial a host function threw (`{ code, message, limit, value }`), or `undefined` when the
 * error is something else: `try { orders.place(r) } catch (e) { const d = denialOf(e); ... }`.
 */
export function denialOf(error) {
  const payload = error?.payload;
  return payload && typeof payload.code === 'string' ? payload : undefined;
}

// ---- Views ----------------------------------------------------------------------------------

/** The plugin's signed position in `instrument` (0 when flat), from the host's view. */
export function positionSize(instrument) {
  for (const p of views.positions()) {
    if (p.instrument === instrument) return p.size;
  }
  return 0;
}

/** The mid price of `instrument`, or `undefined` when the host has no two-sided quote. */
export function midPrice(instrument) {
  const q = views.bestBidAsk(instrument);
  return q === undefined ? undefined : (q.bid + q.ask) / 2;
}

/** Host time in milliseconds, as a Number (virtual in backtests). */
export function now() {
  return Number(host.now());
}

// ---- Logging --------------------------------------------------------------------------------

const text = (args) => args.map((a) => (typeof a === 'string' ? a : String(a))).join(' ');

/** Logs at debug level through the host (rate-limited; long lines are truncated). */
export function debug(...args) {
  host.log('debug', text(args));
}

/** Logs at info level through the host. */
export function info(...args) {
  host.log('info', text(args));
}

/** Logs at warn level through the host. */
export function warn(...args) {
  host.log('warn', text(args));
}

/** Logs at error level through the host. */
export function error(...args) {
  host.log('error', text(args));
}

// ---- Snapshots ------------------------------------------------------------------------------

/** A value as JSON in UTF-8: a ready `snapshot()` result. */
export function encodeJson(value) {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** The value `encodeJson` wrote (throws on anything else). */
export function decodeJson(bytes) {
  return JSON.parse(new TextDecoder().decode(bytes));
}

// ---- Indicators -----------------------------------------------------------------------------

/**
 * Simple moving average over the last `period` values. A running sum makes an update O(1); every
 * `period` updates it is computed afresh from the window, so rounding errors never outgrow one
 * window's worth. For comparisons that must be exact, count prices as integers (see sma-cross).
 */
export class Sma {
  constructor(period) {
    this.window = new Float64Array(Math.max(1, Math.floor(period)));
    this.len = 0;
    this.next = 0;
    this.sum = 0;
    this.sinceFresh = 0;
  }

  /** Adds a value; returns the average once `period` values have been seen, else `undefined`. */
  update(value) {
    const period = this.window.length;
    if (this.len < period) {
      this.len += 1;
      this.sum += value;
    } else {
      this.sum += value - this.window[this.next];
    }
    this.window[this.next] = value;
    this.next = this.next + 1 === period ? 0 : this.next + 1;
    this.sinceFresh += 1;
    if (this.sinceFresh >= period) {
      this.sinceFresh = 0;
      let sum = 0;
      for (let i = 0; i < this.len; i++) sum += this.window[i];
      this.sum = sum;
    }
    return this.value();
  }

  /** The current average once the window is full, else `undefined`. */
  value() {
    return this.len === this.window.length ? this.sum / this.window.length : undefined;
  }

  /** The window length. */
  period() {
    return this.window.length;
  }

  /** The values in the window, oldest first: what a strategy saves on hot reload. */
  values() {
    const filled = Array.from(this.window.subarray(0, this.len));
    const split = Math.min(this.next, this.len);
    return filled.slice(split).concat(filled.slice(0, split));
  }
}

/** Exponential moving average with smoothing `2 / (period + 1)`. */
export class Ema {
  constructor(period) {
    this.alpha = 2 / (Math.max(1, Math.floor(period)) + 1);
    this.current = undefined;
  }

  /** Adds a value and returns the new average. */
  update(value) {
    this.current = this.current === undefined ? value : this.current + this.alpha * (value - this.current);
    return this.current;
  }

  /** The current average, `undefined` before the first value. */
  value() {
    return this.current;
  }
}
