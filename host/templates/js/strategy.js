// {{name}}: a moving-average crossover on closed one-minute candles. Long `size` when the fast
// average crosses above the slow one, flat when it crosses back below.
//
// The host calls the handlers of a `Strategy` (onCandle, onTicker, onOrder, onFill, onTimer, ...);
// the strategy acts only through the host's functions (`orders`, `views`, `feeds`, `timers`).
// Build: `tradebox plugin build .`  Test: `npm test`.

import {
  Strategy, exportStrategy, Sma, orders, views, feeds, market, reduceOnly, positionSize, denialOf, info, warn,
  encodeJson, decodeJson,
} from 'tradebox-sdk';

class Crossover extends Strategy {
  // `config` is the plugin's JSON config, with the defaults of tradebox.toml filled in.
  constructor(config) {
    super(config);
    const { symbol = 'BTC-USDT', fast = 5, slow = 20, size = 0.001 } = config;
    if (!(fast > 0 && fast < slow)) throw new Error(`need 0 < fast < slow, got ${fast} and ${slow}`); // refuses the load
    const instrument = views.findInstrument(symbol);
    if (instrument === undefined) throw new Error(`instrument ${symbol} is not granted`);
    feeds.subscribe(instrument.id, 'candle1m');
    this.instrument = instrument.id;
    this.size = size;
    this.fast = new Sma(fast);
    this.slow = new Sma(slow);
    this.wasAbove = undefined; // whether fast was above slow at the last closed candle
    this.working = null; // the order in flight: one at a time
    info(`{{name}} on ${symbol}: fast ${fast}, slow ${slow}, size ${size}`);
  }

  onCandle(candle) {
    if (candle.instrument !== this.instrument || !candle.confirmed) return;
    const fast = this.fast.update(candle.close);
    const slow = this.slow.update(candle.close);
    if (slow === undefined || fast === slow) return;
    const above = fast > slow;
    const crossed = this.wasAbove !== undefined && above !== this.wasAbove;
    this.wasAbove = above;
    if (!crossed || this.working !== null) return;
    const held = positionSize(this.instrument);
    if (above && held <= 0) this.send(market(this.instrument, 'buy', this.size));
    else if (!above && held > 0) this.send(reduceOnly(market(this.instrument, 'sell', held)));
  }

  send(request) {
    try {
      this.working = orders.place(request); // the host's client order id
    } catch (e) {
      const denial = denialOf(e); // the host refused it: risk limits, permissions, ...
      if (denial === undefined) throw e;
      warn(`order denied: ${denial.code} ${denial.message}`);
    }
  }

  onOrder(order) {
    const done = order.state === 'filled' || order.state === 'canceled' || order.state === 'rejected';
    if (done && order.clientOrderId === this.working) this.working = null;
  }

  // An order the host accepted and refused later (a check that needed the venue's state).
  onRiskDenied(denial) {
    if (denial.clientOrderId === this.working) this.working = null;
  }

  // Hot reload (`tradebox plugin reload`): the closes seen so far go to the new version, so its
  // averages are ready at once.
  snapshot() {
    return encodeJson({ closes: this.slow.values() });
  }

  restore(state) {
    for (const close of decodeJson(state).closes) {
      this.fast.update(close);
      this.slow.update(close);
    }
  }
}

export const { init, onEvents, onTickers, snapshot, restore } = exportStrategy(Crossover);
