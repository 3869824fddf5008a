// A two-sided market maker with inventory control: the JavaScript twin of plugins/market-maker
// (Rust), quoting exactly as it does (tests/js.rs compares their orders).
//
// Config (JSON, every field optional):
// `{"symbol": "ETH-USDT", "spread_bps": 8, "size": 0.05, "max_inventory": 0.5, "requote_bps": 2,
//   "skew_bps": 10}`.
// Quotes a post-only bid and ask `spread_bps / 2` around the mid. Each unit of inventory (as a
// fraction of `max_inventory`) shifts both quotes by up to `skew_bps` against the position, so a
// long book leans towards selling. The side that would push inventory past the limit is not
// quoted. Quotes move (amend) when the fair price drifts by more than `requote_bps`.
//
// It keeps to the two rules every strategy that manages resting orders needs (see the Rust
// version for the whole story): act only on orders still open (follow each quote from its
// `order` and `fill` events, and ask the host's `openOrders` before amending or cancelling), and
// stay inside the rate `tradebox.toml` declares (count placements and amends; wait on a timer).

import {
  Strategy, exportStrategy, orders, views, feeds, timers, postOnly, positionSize, denialOf, now,
  info, debug,
} from 'tradebox-sdk';

/** The order rate `tradebox.toml` declares (`max_orders_per_sec`): placements and amends. */
const MAX_ORDERS_PER_SEC = 10;

/** The window orders are counted in, ms: the host's second plus a margin for its own clock. */
const RATE_WINDOW_MS = 1100;

/** Where one of our quotes stands. */
const PLACING = 'placing'; // placed, not yet confirmed by the venue: not amended until it is
const RESTING = 'resting'; // on the book, as far as we know
const CANCELLING = 'cancelling'; // our cancel is on its way: left alone until its end arrives

const DEFAULTS = { symbol: 'ETH-USDT', spread_bps: 8, size: 0, max_inventory: 0, requote_bps: 2, skew_bps: 10 };

/** The config with defaults, refusing unknown fields and wrong types as the Rust version does. */
function parseConfig(raw) {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('config: expected a JSON object');
  const config = { ...DEFAULTS };
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in DEFAULTS)) {
      throw new Error(`config: unknown field \`${key}\`, expected one of ${Object.keys(DEFAULTS).join(', ')}`);
    }
    if (typeof value !== typeof DEFAULTS[key]) throw new Error(`config: invalid value for \`${key}\`: ${JSON.stringify(value)}`);
    config[key] = value;
  }
  return config;
}

/** Counts placements and amends over the last RATE_WINDOW_MS. */
class Throttle {
  constructor() {
    this.sent = [];
  }

  /** Takes a place in the window at `now` (host time, ms), or says no. */
  tryTake(now) {
    while (this.sent.length > 0 && now - this.sent[0] >= RATE_WINDOW_MS) this.sent.shift();
    if (this.sent.length >= MAX_ORDERS_PER_SEC) return false;
    this.sent.push(now);
    return true;
  }

  /** Milliseconds from `now` until a place frees up. */
  waitMs(now) {
    return this.sent.length === 0 ? 0 : Math.max(this.sent[0] + RATE_WINDOW_MS - now, 1);
  }
}

const NOTHING = { kind: 'nothing', order: 3 };
const CANCEL = { kind: 'cancel', order: 0 };
const place = (price) => ({ kind: 'place', price, order: 1 });
const amend = (price) => ({ kind: 'amend', price, order: 2 });

/**
 * What a side with `quote` needs to rest at `price` (if `allowed` at all), moving only when the
 * price drifted by more than `threshold`.
 */
function action(quote, price, allowed, threshold) {
  if (quote !== null) {
    if (quote.status === CANCELLING) return NOTHING;
    if (!allowed) return CANCEL;
    if (quote.status === RESTING && Math.abs(quote.price - price) > threshold) return amend(price);
    return NOTHING;
  }
  return allowed ? place(price) : NOTHING;
}

const touchesAnOrder = (a) => a.kind === 'amend' || a.kind === 'cancel';

class MarketMaker extends Strategy {
  constructor(raw) {
    super(raw);
    const config = parseConfig(raw);
    const instrument = views.findInstrument(config.symbol);
    if (instrument === undefined) throw new Error(`instrument ${config.symbol} is unknown or not granted`);
    if (config.size <= 0) config.size = instrument.minSize * 50;
    if (config.max_inventory <= 0) config.max_inventory = config.size * 5;
    if (config.spread_bps <= 0) throw new Error('config: spread_bps must be positive');
    try {
      feeds.subscribe(instrument.id, 'ticker');
    } catch (e) {
      throw denialOf(e)?.message ?? e;
    }
    info(`market-maker on ${instrument.symbol} spread ${config.spread_bps} bps size ${config.size}`);
    this.settings = config;
    this.instrument = instrument;
    /** Each side's quote: { id, price, size, filled, status } or null. */
    this.bid = null;
    this.ask = null;
    this.mid = 0;
    this.bestBid = 0;
    this.bestAsk = 0;
    this.fills = 0;
    this.throttle = new Throttle();
    /** A timer is set to requote once the throttle lets us (a quiet market sends no events). */
    this.wakeSet = false;
    // After a restart or reload the plugin's orders are still on the book: adopt one quote per
    // side and cancel the rest, so nothing is left unmanaged.
    for (const order of views.openOrders()) {
      if (order.instrument !== instrument.id) continue;
      if (this.quote(order.side) === null) {
        this.setQuote(order.side, {
          id: order.clientOrderId,
          price: order.price,
          size: order.size,
          filled: order.filledSize,
          status: order.state === 'pending' ? PLACING : RESTING,
        });
      } else {
        try {
          orders.cancel(order.clientOrderId);
        } catch {
          // Whatever the answer, the order is no longer ours to manage.
        }
      }
    }
  }

  quote(side) {
    return side === 'buy' ? this.bid : this.ask;
  }

  setQuote(side, quote) {
    if (side === 'buy') this.bid = quote;
    else this.ask = quote;
  }

  /** The side whose quote is `id`, if it is one of ours. */
  sideOf(id) {
    if (this.bid !== null && this.bid.id === id) return 'buy';
    if (this.ask !== null && this.ask.id === id) return 'sell';
    return null;
  }

  /** Target prices for both sides; the skew may move a quote inside the spread, never across. */
  targets(mid, inventory) {
    const c = this.settings;
    const half = (mid * c.spread_bps) / 20_000;
    const lean = Math.min(Math.max(inventory / c.max_inventory, -1), 1);
    const skew = ((mid * c.skew_bps) / 10_000) * lean;
    const tick = this.instrument.tickSize;
    const bid = Math.min(mid - half - skew, this.bestAsk - tick);
    const ask = Math.max(mid + half - skew, this.bestBid + tick);
    return [bid, ask];
  }

  requote() {
    if (this.mid <= 0) return;
    const c = this.settings;
    const inventory = positionSize(this.instrument.id);
    const [bidPx, askPx] = this.targets(this.mid, inventory);
    const size = c.size;
    const canBuy = inventory + size <= c.max_inventory + 1e-12;
    const canSell = inventory - size >= -c.max_inventory - 1e-12;
    const threshold = (this.mid * c.requote_bps) / 10_000;
    let bid = action(this.bid, bidPx, canBuy, threshold);
    let ask = action(this.ask, askPx, canSell, threshold);
    if (touchesAnOrder(bid) || touchesAnOrder(ask)) {
      // The host may know of an end whose events have not reached us yet.
      this.forgetEnded();
      bid = action(this.bid, bidPx, canBuy, threshold);
      ask = action(this.ask, askPx, canSell, threshold);
    }
    const time = now();
    // Cancels first (they have their own window), then quotes missing a side, then moves.
    const todo = [['buy', bid], ['sell', ask]].sort((a, b) => a[1].order - b[1].order);
    for (const [side, act] of todo) {
      if (act.kind === 'nothing') continue;
      if (act.kind === 'cancel') this.cancel(side);
      else if (!this.throttle.tryTake(time)) this.wakeLater(time);
      else if (act.kind === 'place') this.place(side, act.price, size);
      else this.amend(side, act.price);
    }
  }

  /** Forgets the quotes the host no longer lists as open. */
  forgetEnded() {
    const open = views.openOrders().map((o) => o.clientOrderId);
    if (this.bid !== null && !open.includes(this.bid.id)) this.bid = null;
    if (this.ask !== null && !open.includes(this.ask.id)) this.ask = null;
  }

  place(side, price, size) {
    try {
      const id = orders.place(postOnly(this.instrument.id, side, price, size));
      this.setQuote(side, { id, price, size, filled: 0, status: PLACING });
    } catch (e) {
      const d = denialOf(e);
      if (d === undefined) throw e;
      debug(`quote refused: ${d.code} ${d.message}`);
    }
  }

  amend(side, price) {
    const quote = this.quote(side);
    if (quote === null) return;
    try {
      orders.amend(quote.id, price, undefined);
      quote.price = price;
    } catch (e) {
      const d = denialOf(e);
      if (d === undefined) throw e;
      if (d.code === 'UNKNOWN_ORDER') this.setQuote(side, null);
      else debug(`amend refused: ${d.code} ${d.message}`); // still ours and open: tried again later
    }
  }

  cancel(side) {
    const quote = this.quote(side);
    if (quote === null) return;
    try {
      orders.cancel(quote.id);
      quote.status = CANCELLING;
    } catch (e) {
      const d = denialOf(e);
      if (d === undefined) throw e;
      if (d.code === 'CANCEL_PENDING') quote.status = CANCELLING;
      else if (d.code === 'UNKNOWN_ORDER') this.setQuote(side, null);
      else debug(`cancel refused: ${d.code} ${d.message}`);
    }
  }

  wakeLater(time) {
    if (!this.wakeSet) {
      timers.setTimer(BigInt(this.throttle.waitMs(time)));
      this.wakeSet = true;
    }
  }

  onTicker(t) {
    // A ticker with one price on both sides is a market that shows no spread (a backtest on
    // candles hands each bar's close so): quoting around it is what this strategy would do.
    if (t.instrument === this.instrument.id && t.bid > 0 && t.ask >= t.bid) {
      this.mid = (t.bid + t.ask) / 2;
      this.bestBid = t.bid;
      this.bestAsk = t.ask;
    }
  }

  onOrder(order) {
    const done = order.state === 'filled' || order.state === 'canceled' || order.state === 'rejected';
    const side = this.sideOf(order.clientOrderId);
    if (side === null) return;
    if (done) {
      this.setQuote(side, null);
      return;
    }
    const q = this.quote(side);
    q.filled = order.filledSize;
    if (q.status === PLACING && order.state !== 'pending') q.status = RESTING;
  }

  onFill(fill) {
    this.fills += 1;
    // The fill that completes a quote ends it, whether or not its `filled` event has arrived.
    const side = this.sideOf(fill.clientOrderId);
    if (side === null) return;
    const q = this.quote(side);
    q.filled += fill.size;
    if (q.filled >= q.size - 1e-12) this.setQuote(side, null);
  }

  onRiskDenied(denial) {
    // An amend the venue refused: usually it crossed a fill, whose events follow. The quote is
    // kept (it may well still rest); `forgetEnded` settles it.
    debug(`refused after acceptance: ${denial.denial.code} ${denial.denial.message}`);
  }

  onTimer(_timer) {
    // The requote follows in onBatchEnd.
    this.wakeSet = false;
  }

  // Quote once per batch, on the newest mid and inventory.
  onBatchEnd() {
    this.requote();
  }

  /** The fill count, 8 bytes little-endian as the Rust version's: either can take over. */
  snapshot() {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(this.fills), true);
    return bytes;
  }

  restore(bytes) {
    if (bytes.length !== 8) throw new Error('expected 8 bytes');
    this.fills = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  }
}

export const { init, onEvents, onTickers, snapshot, restore } = exportStrategy(MarketMaker);
