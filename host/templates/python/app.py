"""{{name}}: a moving-average crossover on one-minute candles.

Long `size` when the fast average of closes crosses above the slow one, flat when it crosses
below; at most one order in flight. Everything the strategy can do goes through the host (see
`tradebox_sdk`): it holds no keys and has no network.
"""

import json

from tradebox_sdk import (
    Channel, OrderState, Side, Sma, Strategy, export_strategy, feeds, info, market, place,
    position_size, reduce_only, views, warn,
)


class Crossover(Strategy):
    def __init__(self, config):
        # The config is checked against tradebox.toml by the host; defaults are repeated here.
        symbol = config.get("symbol", "BTC-USDT")
        fast, slow = config.get("fast", 10), config.get("slow", 30)
        if not 0 < fast < slow:
            raise ValueError(f"need 0 < fast < slow, got {fast} and {slow}")
        instrument = views.find_instrument(symbol)
        if instrument is None:
            raise ValueError(f"instrument {symbol} is unknown or not granted")
        feeds.subscribe(instrument.id, Channel.CANDLE1M)
        self.instrument = instrument.id
        self.size = config.get("size", 0.0) or instrument.min_size * 10.0
        self.fast, self.slow = Sma(fast), Sma(slow)
        self.above = None      # whether fast was above slow at the last bar
        self.working = None    # the order in flight, if any
        info(f"{{name}} on {symbol}: fast {fast}, slow {slow}, size {self.size}")

    def on_candle(self, candle):
        if candle.instrument != self.instrument or not candle.confirmed:
            return
        fast, slow = self.fast.update(candle.close), self.slow.update(candle.close)
        if fast is None or slow is None or fast == slow:
            return
        above = fast > slow
        crossed = self.above is not None and above != self.above
        self.above = above
        if not crossed or self.working is not None:
            return
        held = position_size(self.instrument)
        if above and held <= 0.0:
            self.send(market(self.instrument, Side.BUY, self.size))
        elif not above and held > 0.0:
            self.send(reduce_only(market(self.instrument, Side.SELL, held)))

    def send(self, request):
        order_id, denial = place(request)
        if denial is None:
            self.working = order_id
        else:
            warn(f"order denied: {denial.code} {denial.message}")

    def on_order(self, order):
        if order.client_order_id == self.working and order.state in (
            OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED
        ):
            self.working = None

    def on_risk_denied(self, denial):
        if denial.client_order_id == self.working:
            self.working = None

    # Hot reload (`tradebox plugin reload`): the closes seen so far go to the new version, so
    # its averages are ready at once.
    def snapshot(self):
        return json.dumps({"closes": self.slow.values()}).encode()

    def restore(self, state):
        for close in json.loads(state)["closes"]:
            self.fast.update(close)
            self.slow.update(close)


# What componentize-py builds: the host's calls, routed to the strategy.
WitWorld = export_strategy(Crossover)
