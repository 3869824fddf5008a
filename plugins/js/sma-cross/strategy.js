// Moving-average crossover, on tickers' mids or on closed candles' closes: the JavaScript twin of
// plugins/sma-cross (Rust), trading exactly as it does (tests/js.rs compares their orders).
//
// Config (JSON, every field optional):
// `{"symbol": "BTC-USDT", "fast": 10, "slow": 30, "size": 0.001, "source": "ticker"}`.
// `source` is `ticker` (each ticker's mid) or `candle` (each closed one-minute bar's close).
// A crossover is a change in the sign of (fast SMA - slow SMA) from the last sign that was not
// zero (an exact tie is no signal, and the first sign is no crossover). Goes long `size` with a
// market order on an up-cross when flat, and sells the whole position on a down-cross when long.
// Sends at most one order at a time.
//
// The averages are compared exactly, as the Rust version does: prices become integers of 1e-8
// (rounded as Rust's `(units + 0.5) as i64`: truncation of units + 0.5), each window keeps an
// integer sum, and fast is above slow when `fastSum * slow > slowSum * fast`. Numbers hold those
// integers exactly up to 2^53; beyond that the sums and products are BigInts.

import {
  Strategy, exportStrategy, orders, views, feeds, market, reduceOnly, positionSize, denialOf,
  encodeJson, decodeJson, info, warn,
} from 'tradebox-sdk';

const UP = 1;
const DOWN = -1;

/** Prices are counted in units of 1e-8 (no exchange quotes finer). */
const UNITS = 1e8;
/** Integers up to this are exact in a Number (and so are sums and products below it). */
const EXACT = 2 ** 53;
const I64_MAX = (1n << 63n) - 1n;

/**
 * Two simple moving averages over one window of prices and which one was last on top; free of
 * host calls.
 */
export class Signal {
  constructor(fast, slow) {
    this.fast = Math.max(1, fast);
    this.slow = Math.max(slow, this.fast + 1);
    // The last `slow` prices in units, a ring: the first `len` slots hold prices, and once it is
    // full `next` is the oldest. Each is an integer, exact in a Number (at most 2^63).
    this.window = new Float64Array(this.slow);
    this.len = 0;
    this.next = 0;
    // Where the price that leaves the fast window is: `fast` places behind `next`.
    this.fastTail = this.slow - this.fast;
    // The most units one price may count for, so that no sum of `slow` of them passes i64.
    this.most = Number(I64_MAX / BigInt(this.slow));
    // While every price is at most this, the sums stay below 2^53 and are kept as Numbers;
    // after a larger one they are BigInts for good.
    this.smallUnit = Math.floor(EXACT / this.slow);
    this.big = false;
    this.fastSum = 0;
    this.slowSum = 0;
    // +1 or -1: the sign of (fast - slow) at the last update where they differed; 0 before.
    this.lastSign = 0;
  }

  /** The periods, fast and slow. */
  periods() {
    return [this.fast, this.slow];
  }

  /**
   * Feeds a price; returns UP or DOWN on a crossover, else null. A price that is not positive,
   * or too large for the sums, is passed over.
   */
  update(price) {
    let units = price * UNITS;
    if (Number.isNaN(units) || !(units >= 1 && units <= this.most)) return null;
    units = Math.trunc(units + 0.5);
    const slow = this.slow;
    const leavingFast = this.len >= this.fast ? this.window[this.fastTail] : 0;
    const leavingSlow = this.len === slow ? this.window[this.next] : 0;
    this.window[this.next] = units;
    this.next = this.next + 1 === slow ? 0 : this.next + 1;
    this.fastTail = this.fastTail + 1 === slow ? 0 : this.fastTail + 1;
    this.len = Math.min(this.len + 1, slow);
    if (!this.big && units > this.smallUnit) {
      this.big = true;
      this.fastSum = BigInt(this.fastSum);
      this.slowSum = BigInt(this.slowSum);
    }
    if (this.big) {
      this.fastSum += BigInt(units) - BigInt(leavingFast);
      this.slowSum += BigInt(units) - BigInt(leavingSlow);
    } else {
      this.fastSum += units - leavingFast;
      this.slowSum += units - leavingSlow;
    }
    if (this.len < slow) return null;
    const sign = this.compare();
    if (sign === 0) return null;
    const previous = this.lastSign;
    this.lastSign = sign;
    if (previous === 0 || previous === sign) return null;
    return sign > 0 ? UP : DOWN;
  }

  /** The sign of fastSum * slow - slowSum * fast, exactly. */
  compare() {
    if (!this.big) {
      const a = this.fastSum * this.slow;
      const b = this.slowSum * this.fast;
      // Below 2^53 the float products are the integer ones.
      if (a < EXACT && b < EXACT) return a > b ? 1 : a < b ? -1 : 0;
    }
    const a = BigInt(this.fastSum) * BigInt(this.slow);
    const b = BigInt(this.slowSum) * BigInt(this.fast);
    return a > b ? 1 : a < b ? -1 : 0;
  }

  /** The prices in the window, oldest first. */
  recent() {
    const out = [];
    const split = Math.min(this.next, this.len);
    for (let i = split; i < this.len; i++) out.push(this.window[i] / UNITS);
    for (let i = 0; i < split; i++) out.push(this.window[i] / UNITS);
    return out;
  }
}

/** Everything done with a ticker or candle before deciding to trade; free of host calls. */
export class Core {
  constructor(instrument, fast, slow) {
    this.instrument = instrument;
    this.signal = new Signal(fast, slow);
  }

  onTicker(instrument, bid, ask) {
    if (instrument !== this.instrument || bid <= 0 || ask <= 0) return null;
    return this.signal.update((bid + ask) / 2);
  }

  /** Only a closed bar of the instrument counts, by its close. */
  onCandle(instrument, close, confirmed) {
    if (instrument !== this.instrument || !confirmed || close <= 0) return null;
    return this.signal.update(close);
  }

  recent() {
    return this.signal.recent();
  }

  /** Rebuilds the signal from saved prices (the newest `slow` of them count). */
  replay(prices) {
    const [fast, slow] = this.signal.periods();
    this.signal = new Signal(fast, slow);
    for (const price of prices) this.signal.update(price);
  }
}

const DEFAULTS = { symbol: 'BTC-USDT', fast: 10, slow: 30, size: 0, source: 'ticker' };

/** The config with defaults, refusing unknown fields and wrong types as the Rust version does. */
export function parseConfig(raw) {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('config: expected a JSON object');
  const config = { ...DEFAULTS };
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in DEFAULTS)) {
      throw new Error(`config: unknown field \`${key}\`, expected one of ${Object.keys(DEFAULTS).join(', ')}`);
    }
    const ok = {
      symbol: typeof value === 'string',
      fast: Number.isSafeInteger(value) && value >= 0,
      slow: Number.isSafeInteger(value) && value >= 0,
      size: typeof value === 'number',
      source: value === 'ticker' || value === 'candle',
    }[key];
    if (!ok) throw new Error(`config: invalid value for \`${key}\`: ${JSON.stringify(value)}`);
    config[key] = value;
  }
  return config;
}

class SmaCross extends Strategy {
  constructor(raw) {
    super(raw);
    const config = parseConfig(raw);
    if (config.fast === 0 || config.fast >= config.slow) {
      throw new Error(`config: need 0 < fast < slow, got ${config.fast} and ${config.slow}`);
    }
    const instrument = views.findInstrument(config.symbol);
    if (instrument === undefined) throw new Error(`instrument ${config.symbol} is unknown or not granted`);
    try {
      feeds.subscribe(instrument.id, config.source === 'ticker' ? 'ticker' : 'candle1m');
    } catch (e) {
      throw denialOf(e)?.message ?? e;
    }
    this.instrument = instrument.id;
    this.size = config.size > 0 ? config.size : instrument.minSize * 10;
    this.core = new Core(instrument.id, config.fast, config.slow);
    /** The client order id of the order in flight, or null. */
    this.working = null;
    const from = config.source === 'ticker' ? 'Ticker' : 'Candle';
    info(`sma-cross on ${config.symbol} fast ${config.fast} slow ${config.slow} size ${this.size} from ${from}`);
  }

  /** Acts on a crossover: at most one working order, long on UP, flat on DOWN. */
  onCross(cross) {
    if (this.working !== null) return;
    const held = positionSize(this.instrument);
    let request;
    if (cross === UP && held <= 0) request = market(this.instrument, 'buy', this.size);
    else if (cross === DOWN && held > 0) request = reduceOnly(market(this.instrument, 'sell', held));
    else return;
    try {
      this.working = orders.place(request);
    } catch (e) {
      const denial = denialOf(e);
      if (denial === undefined) throw e;
      warn(`order denied: ${denial.code} ${denial.message}`);
    }
  }

  onTicker(ticker) {
    const cross = this.core.onTicker(ticker.instrument, ticker.bid, ticker.ask);
    if (cross !== null) this.onCross(cross);
  }

  onCandle(candle) {
    const cross = this.core.onCandle(candle.instrument, candle.close, candle.confirmed);
    if (cross !== null) this.onCross(cross);
  }

  onOrder(order) {
    const done = order.state === 'filled' || order.state === 'canceled' || order.state === 'rejected';
    if (done && this.working === order.clientOrderId) this.working = null;
  }

  onRiskDenied(denial) {
    if (denial.clientOrderId !== undefined && denial.clientOrderId === this.working) this.working = null;
  }

  /** What survives a hot reload: the recent prices that fill both windows. */
  snapshot() {
    return encodeJson({ prices: this.core.recent() });
  }

  restore(bytes) {
    let saved;
    try {
      saved = decodeJson(bytes);
    } catch (e) {
      throw new Error(`restore: ${e.message}`);
    }
    const prices = saved?.prices;
    if (!Array.isArray(prices) || !prices.every((p) => typeof p === 'number')) {
      throw new Error('restore: expected {"prices": [numbers]}');
    }
    this.core.replay(prices);
  }
}

export const { init, onEvents, onTickers, snapshot, restore } = exportStrategy(SmaCross);
