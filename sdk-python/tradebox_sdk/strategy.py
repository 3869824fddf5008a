"""The `Strategy` base class and the event dispatcher behind `export_strategy`, the same
routing as the Rust SDK's `sdk/src/strategy.rs`."""

import json

from wit_world.imports import types

Ticker = types.Ticker


class Strategy:
    """A trading strategy: a class that reacts to events.

    Every handler does nothing by default, so a strategy writes only what it uses. Handlers run
    one at a time and should return quickly: the host gives each batch a CPU deadline and
    stops an instance that overruns it. An exception raised by a handler stops the instance
    too (its traceback goes to the plugin's log first), as a panic does in Rust.
    """

    def __init__(self, config: dict):
        """Builds the strategy from its config (the JSON object the operator gave, `{}` when
        none). Subscribe to market data and set timers here. An exception refuses the load with
        its message."""

    @classmethod
    def from_config(cls, config: str):
        """Makes the strategy from the config text; override to read it otherwise."""
        try:
            parsed = json.loads(config) if config.strip() else {}
        except ValueError as e:
            raise ValueError(f"config: not valid JSON: {e}") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"config: expected a JSON object, got {type(parsed).__name__}")
        return cls(parsed)

    def on_ticker(self, ticker: types.Ticker) -> None:
        """Best bid/ask and last price changed. On busy feeds this runs once per ticker of a
        column batch: keep it small."""

    def on_book(self, book: types.Book) -> None:
        """A new top-of-book snapshot."""

    def on_trade(self, trade: types.Trade) -> None:
        """A public trade."""

    def on_candle(self, candle: types.Candle) -> None:
        """A candle update (`confirmed` is False while the bar is still forming)."""

    def on_order(self, order: types.OrderUpdate) -> None:
        """One of this plugin's orders changed state."""

    def on_fill(self, fill: types.Fill) -> None:
        """One of this plugin's orders filled (partly or fully)."""

    def on_position(self, position: types.Position) -> None:
        """This plugin's position changed."""

    def on_balance(self, balance: types.Balance) -> None:
        """An account balance changed."""

    def on_timer(self, timer: types.TimerFired) -> None:
        """A timer set through `timers` fired."""

    def on_risk_denied(self, denial: types.RiskDenial) -> None:
        """An intent was refused after it had been accepted."""

    def on_connectivity(self, change: types.Connectivity) -> None:
        """A link to the venue went down or came back."""

    def on_trading_state(self, change: types.TradingStateChange) -> None:
        """The plugin's or the account's trading state changed."""

    def on_batch_end(self) -> None:
        """Called after each batch, once every event in it has been handled: the place to act
        on the newest state instead of on every tick."""

    def snapshot(self) -> bytes:
        """State to hand over to the next version on hot reload."""
        return b""

    def restore(self, state: bytes) -> None:
        """Takes over the state of the previous version (after construction). An exception
        refuses the reload and the running version keeps trading. Open orders carry over
        (adopt them from `views.open_orders()` in `__init__`); timers and subscriptions do
        not: `__init__` sets them again."""


# The handler each event case goes to, by the generated class of the case.
_HANDLERS = {
    types.Event_Ticker: "on_ticker",
    types.Event_Book: "on_book",
    types.Event_Trade: "on_trade",
    types.Event_Candle: "on_candle",
    types.Event_Order: "on_order",
    types.Event_Fill: "on_fill",
    types.Event_Position: "on_position",
    types.Event_Balance: "on_balance",
    types.Event_Timer: "on_timer",
    types.Event_RiskDenied: "on_risk_denied",
    types.Event_Connectivity: "on_connectivity",
    types.Event_TradingState: "on_trading_state",
}


def dispatch(strategy: Strategy, events) -> None:
    """Routes a batch of events to the strategy's handlers, in order, then `on_batch_end`."""
    for event in events:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            getattr(strategy, handler)(event.value)
    strategy.on_batch_end()


def dispatch_tickers(strategy: Strategy, columns) -> None:
    """Routes a run of tickers delivered in columns to `on_ticker`, one ticker at a time and in
    order, exactly as `dispatch` would have for the same tickers as events, then
    `on_batch_end`. A short column or a partial last group of five prices ends the run."""
    on_ticker = strategy.on_ticker
    instrument, ts, prices = columns.instrument, columns.ts, columns.prices
    n = min(len(instrument), len(ts), len(prices) // 5)
    for i in range(n):
        j = 5 * i
        on_ticker(Ticker(instrument[i], ts[i], prices[j], prices[j + 1], prices[j + 2], prices[j + 3], prices[j + 4]))
    strategy.on_batch_end()
