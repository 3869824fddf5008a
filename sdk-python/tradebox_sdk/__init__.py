"""Guest SDK for tradebox strategy plugins written in Python.

A strategy is a subclass of `Strategy`; `export_strategy` turns it into the `WitWorld` class
componentize-py builds into a WebAssembly component the tradebox host loads. The strategy never
holds a key and never touches the network: it sees events and asks the host for trades through
`orders`, `views`, `feeds`, `timers` and the logging helpers here.

A complete strategy (`app.py`)::

    from tradebox_sdk import *

    class MeanRevert(Strategy):
        def __init__(self, config):
            instrument = views.find_instrument(config.get("symbol", "BTC-USDT"))
            if instrument is None:
                raise ValueError("instrument not granted")
            feeds.subscribe(instrument.id, Channel.TICKER)
            self.instrument = instrument.id
            self.average = Sma(20)
            self.size = instrument.min_size

        def on_ticker(self, ticker):
            mid = (ticker.bid + ticker.ask) / 2.0
            avg = self.average.update(mid)
            if avg is None:
                return
            held = position_size(self.instrument)
            if mid < avg * 0.99 and held <= 0.0:
                order_id, denial = place(limit(self.instrument, Side.BUY, ticker.bid, self.size))
            elif mid > avg and held > 0.0:
                order_id, denial = place(reduce_only(market(self.instrument, Side.SELL, held)))
            else:
                return
            if denial is not None:
                warn(f"order denied: {denial.code} {denial.message}")

    WitWorld = export_strategy(MeanRevert)

`tradebox plugin build DIR` builds it (with `pyproject.toml` and `tradebox.toml` beside it).
`print()` writes to the plugin's log (rate-limited; stderr at error level); the clock and
randomness a Python module sees are the host's (virtual and seeded in a backtest); there are
no files, environment or sockets.
The generated bindings (`wit_world`) exist only inside that build; this package imports them.
"""

from componentize_py_types import Err, Ok, Some
from wit_world.imports import feeds, host, orders, timers, types, views
from wit_world.imports.host import LogLevel
from wit_world.imports.orders import OrderRequest
from wit_world.imports.types import (
    Balance,
    Book,
    Candle,
    Channel,
    Connectivity,
    Denial,
    Fill,
    Instrument,
    InstrumentKind,
    Level,
    Liquidity,
    OrderKind,
    OrderState,
    OrderUpdate,
    Position,
    RiskDenial,
    Scope,
    Side,
    Ticker,
    TickerColumns,
    TimerFired,
    Trade,
    TradingState,
    TradingStateChange,
)
from wit_world.imports.views import Quote

from .indicators import Ema, Sma
from .strategy import Strategy, dispatch, dispatch_tickers

__all__ = [
    # What a strategy is made of.
    "Strategy", "export_strategy", "dispatch", "dispatch_tickers", "Sma", "Ema",
    # The host's interfaces, as generated from the WIT.
    "orders", "views", "feeds", "timers", "host", "types",
    # Helpers.
    "place", "limit", "market", "post_only", "with_kind", "reduce_only", "position_size", "mid_price",
    "now", "log", "trace", "debug", "info", "warn", "error",
    # Results of host calls.
    "Err", "Ok", "Some",
    # Types.
    "Balance", "Book", "Candle", "Channel", "Connectivity", "Denial", "Fill", "Instrument", "InstrumentKind",
    "Level", "Liquidity", "LogLevel", "OrderKind", "OrderRequest", "OrderState", "OrderUpdate", "Position",
    "Quote", "RiskDenial", "Scope", "Side", "Ticker", "TickerColumns", "TimerFired", "Trade", "TradingState",
    "TradingStateChange",
]


# --- Orders -------------------------------------------------------------------------------------


def with_kind(instrument: int, side: Side, kind: OrderKind, price, size: float) -> OrderRequest:
    """Any order kind; `price` is ignored (None) for market orders."""
    return OrderRequest(instrument, side, kind, None if kind == OrderKind.MARKET else price, size, False)


def limit(instrument: int, side: Side, price: float, size: float) -> OrderRequest:
    """A limit order resting at `price`."""
    return OrderRequest(instrument, side, OrderKind.LIMIT, price, size, False)


def post_only(instrument: int, side: Side, price: float, size: float) -> OrderRequest:
    """A post-only limit order: cancelled by the venue instead of taking liquidity."""
    return OrderRequest(instrument, side, OrderKind.POST_ONLY, price, size, False)


def market(instrument: int, side: Side, size: float) -> OrderRequest:
    """A market order."""
    return OrderRequest(instrument, side, OrderKind.MARKET, None, size, False)


def reduce_only(request: OrderRequest) -> OrderRequest:
    """The same request, allowed only to reduce the position."""
    request.reduce_only = True
    return request


def place(request: OrderRequest):
    """Places an order: returns `(client_order_id, None)`, or `(None, denial)` when refused.

    The host answers at once (it never waits on the network); what happens next arrives as
    `on_order`, `on_fill` and `on_risk_denied`. `orders.place` itself raises `Err(denial)`,
    which is easy to let escape by mistake and stop the plugin; this returns it instead.
    """
    try:
        return orders.place(request), None
    except Err as refused:
        return None, refused.value


# --- Views --------------------------------------------------------------------------------------


def position_size(instrument: int) -> float:
    """The plugin's signed position in `instrument` (0 when flat), from the host's view."""
    for p in views.positions():
        if p.instrument == instrument:
            return p.size
    return 0.0


def mid_price(instrument: int):
    """The mid price of `instrument`, or None when the host has no two-sided quote."""
    q = views.best_bid_ask(instrument)
    return None if q is None else (q.bid + q.ask) / 2.0


# --- Logging and time ---------------------------------------------------------------------------


def now() -> int:
    """Host time in ms since the epoch: wall clock live, virtual in backtests."""
    return host.now()


def log(level: LogLevel, message) -> None:
    """Logs through the host (rate-limited per plugin, long messages truncated)."""
    host.log(level, str(message))


def trace(message) -> None:
    """Logs at trace level."""
    host.log(LogLevel.TRACE, str(message))


def debug(message) -> None:
    """Logs at debug level."""
    host.log(LogLevel.DEBUG, str(message))


def info(message) -> None:
    """Logs at info level."""
    host.log(LogLevel.INFO, str(message))


def warn(message) -> None:
    """Logs at warn level."""
    host.log(LogLevel.WARN, str(message))


def error(message) -> None:
    """Logs at error level."""
    host.log(LogLevel.ERROR, str(message))


# --- Export -------------------------------------------------------------------------------------


def _reason(e: BaseException) -> str:
    """The text a host shows for an exception: its own words, with its type when they are
    not enough (a bare `KeyError('x')` says only `'x'`)."""
    if isinstance(e, Err):
        # A host refusal (a subscribe or place denied in `__init__`): its code and message.
        if isinstance(e.value, Denial):
            return f"{e.value.code}: {e.value.message}"
        return str(e.value)
    text = str(e)
    if isinstance(e, (ValueError, RuntimeError)) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def export_strategy(strategy_class):
    """The `WitWorld` class componentize-py exports, for a `Strategy` subclass.

    Write `WitWorld = export_strategy(MyStrategy)` at the end of `app.py`. The strategy is made
    by `strategy_class.from_config(config_text)` when the host calls `init` and lives until the
    instance is dropped. An exception from it becomes the load error the operator reads. The
    instance is kept here, not on the `WitWorld` object, so it does not matter whether
    componentize-py makes one `WitWorld` per call or one for good.
    """
    if not (isinstance(strategy_class, type) and issubclass(strategy_class, Strategy)):
        raise TypeError("export_strategy takes a subclass of tradebox_sdk.Strategy")
    state = {"strategy": None}

    class WitWorld:
        def init(self, config: str) -> None:
            try:
                state["strategy"] = strategy_class.from_config(config)
            except Exception as e:
                raise Err(_reason(e))

        # An exception from a handler escapes: componentize-py writes its traceback to stderr
        # (the plugin's log, at error level) and the instance traps, as a Rust panic does.
        def on_events(self, events) -> None:
            s = state["strategy"]
            if s is not None:
                dispatch(s, events)

        def on_tickers(self, tickers) -> None:
            s = state["strategy"]
            if s is not None:
                dispatch_tickers(s, tickers)

        def snapshot(self) -> bytes:
            s = state["strategy"]
            return b"" if s is None else bytes(s.snapshot())

        def restore(self, data: bytes) -> None:
            s = state["strategy"]
            if s is None:
                raise Err("restore called before init")
            try:
                s.restore(bytes(data))
            except Exception as e:
                raise Err(_reason(e))

    WitWorld.__name__ = WitWorld.__qualname__ = "WitWorld"
    return WitWorld
