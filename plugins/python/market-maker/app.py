"""A two-sided market maker with inventory control: the Python twin of `plugins/market-maker`
(a test runs both on the same market and compares their orders), with the same arithmetic in
the same order, so both quote the same prices to the bit.

Config (JSON, every field optional):
`{"symbol": "ETH-USDT", "spread_bps": 8, "size": 0.05, "max_inventory": 0.5, "requote_bps": 2,
  "skew_bps": 10}`.
Quotes a post-only bid and ask `spread_bps / 2` around the mid. Each unit of inventory (as a
fraction of `max_inventory`) shifts both quotes by up to `skew_bps` against the position, so a
long book leans towards selling. The side that would push inventory past the limit is not
quoted. Quotes move (amend) when the fair price drifts by more than `requote_bps`.

Like the Rust version it acts only on orders still open (it follows each quote's events and
asks the host's `views.open_orders` before touching one) and stays inside the order rate its
`tradebox.toml` declares (it counts its placements and amends and waits on a timer).
"""

from collections import deque

from tradebox_sdk import (
    Channel,
    Err,
    OrderState,
    Side,
    Strategy,
    debug,
    export_strategy,
    feeds,
    info,
    now,
    orders,
    place,
    position_size,
    post_only,
    timers,
    views,
)

# The order rate `tradebox.toml` declares (`max_orders_per_sec`): placements and amends.
MAX_ORDERS_PER_SEC = 10

# The window the plugin counts its orders in, ms: the host's second plus a margin (the host
# counts on its own clock from the moment a call reaches it).
RATE_WINDOW_MS = 1_100

# Where a quote stands. PLACING: not yet confirmed by the venue, so not amended (a post-only
# order cancelled on arrival would have an amend chase it). RESTING: on the book as far as we
# know. CANCELLING: our cancel is on its way; neither amended nor cancelled again.
PLACING, RESTING, CANCELLING = "placing", "resting", "cancelling"

# What a side needs now, in the order they are done: cancels, then places, then amends.
CANCEL, PLACE, AMEND, NOTHING = 0, 1, 2, 3


class Quote:
    """One side's resting quote."""

    __slots__ = ("id", "price", "size", "filled", "status")

    def __init__(self, id, price, size, filled, status):
        self.id, self.price, self.size, self.filled, self.status = id, price, size, filled, status


class Throttle:
    """Counts placements and amends over the last RATE_WINDOW_MS."""

    def __init__(self):
        self.sent = deque()

    def try_take(self, now_ms: int) -> bool:
        while self.sent and now_ms - self.sent[0] >= RATE_WINDOW_MS:
            self.sent.popleft()
        if len(self.sent) >= MAX_ORDERS_PER_SEC:
            return False
        self.sent.append(now_ms)
        return True

    def wait_ms(self, now_ms: int) -> int:
        return max(self.sent[0] + RATE_WINDOW_MS - now_ms, 1) if self.sent else 0


def clamp(x: float, lo: float, hi: float) -> float:
    """Rust's `f64::clamp`."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def action(quote, price: float, allowed: bool, threshold: float):
    """What a side with `quote` needs to rest at `price` (if `allowed` at all), moving only when
    the price drifted by more than `threshold`: (what, price)."""
    if quote is not None:
        if quote.status == CANCELLING:
            return NOTHING, None
        if not allowed:
            return CANCEL, None
        if quote.status == RESTING and abs(quote.price - price) > threshold:
            return AMEND, price
        return NOTHING, None
    return (PLACE, price) if allowed else (NOTHING, None)


def read_config(config: dict) -> dict:
    """The config with its defaults, refusing unknown fields and non-numbers as the Rust
    version's serde does."""
    out = {"symbol": "ETH-USDT", "spread_bps": 8.0, "size": 0.0, "max_inventory": 0.0, "requote_bps": 2.0,
           "skew_bps": 10.0}
    for key, value in config.items():
        if key not in out:
            raise ValueError(f"config: unknown field `{key}`, expected one of {', '.join(out)}")
        if key == "symbol":
            if not isinstance(value, str):
                raise ValueError("config: symbol must be a string")
            out[key] = value
        elif type(value) not in (int, float):
            raise ValueError(f"config: {key} must be a number")
        else:
            out[key] = float(value)
    return out


class MarketMaker(Strategy):
    def __init__(self, config: dict):
        config = read_config(config)
        instrument = views.find_instrument(config["symbol"])
        if instrument is None:
            raise ValueError(f"instrument {config['symbol']} is unknown or not granted")
        if config["size"] <= 0.0:
            config["size"] = instrument.min_size * 50.0
        if config["max_inventory"] <= 0.0:
            config["max_inventory"] = config["size"] * 5.0
        if config["spread_bps"] <= 0.0:
            raise ValueError("config: spread_bps must be positive")
        feeds.subscribe(instrument.id, Channel.TICKER)
        info(f"market-maker-py on {instrument.symbol} spread {config['spread_bps']} bps size {config['size']}")
        self.config = config
        self.instrument = instrument
        self.quotes = {Side.BUY: None, Side.SELL: None}
        self.mid = 0.0
        self.best_bid = 0.0
        self.best_ask = 0.0
        self.fills = 0
        self.throttle = Throttle()
        self.wake_set = False
        # After a restart or reload the plugin's orders are still on the book: adopt one quote
        # per side and cancel the rest, so nothing is left unmanaged.
        for order in views.open_orders():
            if order.instrument != instrument.id:
                continue
            if self.quotes[order.side] is None:
                status = PLACING if order.state == OrderState.PENDING else RESTING
                self.quotes[order.side] = Quote(order.client_order_id, order.price, order.size, order.filled_size,
                                                status)
            else:
                try:
                    orders.cancel(order.client_order_id)
                except Err:
                    pass

    def targets(self, mid: float, inventory: float):
        """Target prices for both sides given the mid and inventory. The skew may move a quote
        inside the spread but never across it."""
        c = self.config
        half = mid * c["spread_bps"] / 20_000.0
        lean = clamp(inventory / c["max_inventory"], -1.0, 1.0)
        skew = mid * c["skew_bps"] / 10_000.0 * lean
        tick = self.instrument.tick_size
        bid = min(mid - half - skew, self.best_ask - tick)
        ask = max(mid + half - skew, self.best_bid + tick)
        return bid, ask

    def requote(self) -> None:
        if self.mid <= 0.0:
            return
        inventory = position_size(self.instrument.id)
        bid_px, ask_px = self.targets(self.mid, inventory)
        c = self.config
        size = c["size"]
        can_buy = inventory + size <= c["max_inventory"] + 1e-12
        can_sell = inventory - size >= -c["max_inventory"] - 1e-12
        threshold = self.mid * c["requote_bps"] / 10_000.0
        bid = action(self.quotes[Side.BUY], bid_px, can_buy, threshold)
        ask = action(self.quotes[Side.SELL], ask_px, can_sell, threshold)
        if bid[0] in (AMEND, CANCEL) or ask[0] in (AMEND, CANCEL):
            # The host may know of an end whose events have not reached us yet.
            self.forget_ended()
            bid = action(self.quotes[Side.BUY], bid_px, can_buy, threshold)
            ask = action(self.quotes[Side.SELL], ask_px, can_sell, threshold)
        now_ms = now()
        # Cancels first (they have their own window), then quotes missing a side, then moves.
        for side, (what, price) in sorted([(Side.BUY, bid), (Side.SELL, ask)], key=lambda t: t[1][0]):
            if what == NOTHING:
                continue
            if what == CANCEL:
                self.cancel(side)
            elif not self.throttle.try_take(now_ms):
                self.wake_later(now_ms)
            elif what == PLACE:
                self.place(side, price, size)
            else:
                self.amend(side, price)

    def forget_ended(self) -> None:
        """Forgets the quotes the host no longer lists as open."""
        open_ids = [o.client_order_id for o in views.open_orders()]
        for side, quote in self.quotes.items():
            if quote is not None and quote.id not in open_ids:
                self.quotes[side] = None

    def place(self, side, price: float, size: float) -> None:
        order_id, denial = place(post_only(self.instrument.id, side, price, size))
        if denial is None:
            self.quotes[side] = Quote(order_id, price, size, 0.0, PLACING)
        else:
            debug(f"quote refused: {denial.code} {denial.message}")

    def amend(self, side, price: float) -> None:
        quote = self.quotes[side]
        if quote is None:
            return
        try:
            orders.amend(quote.id, price, None)
            quote.price = price
        except Err as refused:
            if refused.value.code == "UNKNOWN_ORDER":
                self.quotes[side] = None
            else:
                # Still ours and open: tried again at the next quote.
                debug(f"amend refused: {refused.value.code} {refused.value.message}")

    def cancel(self, side) -> None:
        quote = self.quotes[side]
        if quote is None:
            return
        try:
            orders.cancel(quote.id)
            quote.status = CANCELLING
        except Err as refused:
            code = refused.value.code
            if code == "CANCEL_PENDING":
                quote.status = CANCELLING
            elif code == "UNKNOWN_ORDER":
                self.quotes[side] = None
            else:
                debug(f"cancel refused: {code} {refused.value.message}")

    def wake_later(self, now_ms: int) -> None:
        if not self.wake_set:
            timers.set_timer(self.throttle.wait_ms(now_ms))
            self.wake_set = True

    def side_of(self, order_id: str):
        """The side whose quote `order_id` is, if it is one of ours."""
        for side, quote in self.quotes.items():
            if quote is not None and quote.id == order_id:
                return side
        return None

    def on_ticker(self, ticker) -> None:
        # A ticker with one price on both sides is a market that shows no spread (a backtest on
        # candles hands each bar's close so): quoting around it is what this strategy would do.
        if ticker.instrument == self.instrument.id and ticker.bid > 0.0 and ticker.ask >= ticker.bid:
            self.mid = (ticker.bid + ticker.ask) / 2.0
            self.best_bid = ticker.bid
            self.best_ask = ticker.ask

    def on_order(self, order) -> None:
        side = self.side_of(order.client_order_id)
        if side is None:
            return
        if order.state in (OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED):
            self.quotes[side] = None
        else:
            quote = self.quotes[side]
            quote.filled = order.filled_size
            if quote.status == PLACING and order.state != OrderState.PENDING:
                quote.status = RESTING

    def on_fill(self, fill) -> None:
        self.fills += 1
        # The fill that completes a quote ends it, whether or not its `filled` order event has
        # arrived yet.
        side = self.side_of(fill.client_order_id)
        if side is not None:
            quote = self.quotes[side]
            quote.filled += fill.size
            if quote.filled >= quote.size - 1e-12:
                self.quotes[side] = None

    def on_risk_denied(self, denial) -> None:
        # An amend the venue refused: the quote is kept (it may well still rest);
        # `forget_ended` settles it.
        debug(f"refused after acceptance: {denial.denial.code} {denial.denial.message}")

    def on_timer(self, timer) -> None:
        # The requote follows in `on_batch_end`.
        self.wake_set = False

    def on_batch_end(self) -> None:
        # Quote once per batch, on the newest mid and inventory.
        self.requote()

    def snapshot(self) -> bytes:
        # Live quotes are re-adopted from the host's view of open orders on restore.
        return self.fills.to_bytes(8, "little")

    def restore(self, state: bytes) -> None:
        if len(state) != 8:
            raise ValueError("expected 8 bytes")
        self.fills = int.from_bytes(state, "little")


WitWorld = export_strategy(MarketMaker)
