"""Moving-average crossover, on tickers' mids or on closed candles' closes: the Python twin of
`plugins/sma-cross` (a test runs both on the same market and compares their orders).

Config (JSON, every field optional):
`{"symbol": "BTC-USDT", "fast": 10, "slow": 30, "size": 0.001, "source": "ticker"}`.
`source` is `ticker` (each ticker's mid) or `candle` (each closed one-minute bar's close).
A crossover is a change in the sign of (fast SMA - slow SMA) from the last sign that was not
zero (an exact tie is no signal, and the first sign is no crossover). Goes long `size` with a
market order on an up-cross when flat, and sells the whole position on a down-cross when long.
Sends at most one order at a time.
"""

import json

from tradebox_sdk import (
    Channel,
    OrderState,
    Side,
    Strategy,
    export_strategy,
    feeds,
    info,
    market,
    place,
    position_size,
    reduce_only,
    views,
    warn,
)

# Prices are counted in units of 10^-8 (no exchange quotes finer): integers, so both sums and
# their comparison are exact, bar for bar the same as the Rust version's.
UNITS = 1e8
I64_MAX = (1 << 63) - 1

UP, DOWN = "up", "down"


class Signal:
    """Two simple moving averages over one window of prices and which one was last on top.

    Prices become integers of 10^-8 (rounded as the Rust version rounds: + 0.5, truncated), each
    window keeps an integer running sum, and fast is above slow when
    `fast_sum * slow > slow_sum * fast`, exactly (Python's integers do not overflow; the Rust
    version bounds its prices so that an i64 holds the sums, and the same bound is kept here
    so both pass over the same prices).
    """

    def __init__(self, fast: int, slow: int):
        fast = max(fast, 1)
        slow = max(slow, fast + 1)
        self.window = [0] * slow
        self.len = 0
        self.next = 0
        # Where the price that leaves the fast window is: `fast` places behind `next`.
        self.fast_tail = slow - fast
        self.fast = fast
        self.fast_sum = 0
        self.slow_sum = 0
        # The most units one price may count for (as the Rust version: `i64::MAX / slow`).
        self.most = float(I64_MAX // slow)
        self.fast_above = None

    def periods(self):
        return self.fast, len(self.window)

    def update(self, price: float):
        """Feeds a price; returns UP or DOWN on a crossover, else None."""
        units = price * UNITS
        # False for NaN too.
        if not (1.0 <= units <= self.most):
            return None
        units = int(units + 0.5)
        window = self.window
        slow = len(window)
        leaving_fast = window[self.fast_tail] if self.len >= self.fast else 0
        leaving_slow = window[self.next] if self.len == slow else 0
        window[self.next] = units
        self.next = 0 if self.next + 1 == slow else self.next + 1
        self.fast_tail = 0 if self.fast_tail + 1 == slow else self.fast_tail + 1
        self.len = min(self.len + 1, slow)
        self.fast_sum += units - leaving_fast
        self.slow_sum += units - leaving_slow
        if self.len < slow:
            return None
        a, b = self.fast_sum * slow, self.slow_sum * self.fast
        if a == b:
            return None
        above = a > b
        previous, self.fast_above = self.fast_above, above
        if previous is None or previous == above:
            return None
        return UP if above else DOWN

    def recent(self):
        """The prices in the window, oldest first."""
        filled = self.window[: self.len]
        split = min(self.next, self.len)
        return [u / UNITS for u in filled[split:] + filled[:split]]


def read_config(config: dict) -> dict:
    """The config with its defaults, refusing unknown fields and wrong types as the Rust
    version's serde does."""
    out = {"symbol": "BTC-USDT", "fast": 10, "slow": 30, "size": 0.0, "source": "ticker"}
    for key, value in config.items():
        if key not in out:
            raise ValueError(f"config: unknown field `{key}`, expected one of {', '.join(out)}")
        if key == "symbol" and not isinstance(value, str):
            raise ValueError("config: symbol must be a string")
        if key in ("fast", "slow") and (type(value) is not int or value < 0):
            raise ValueError(f"config: {key} must be a non-negative integer")
        if key == "size" and (type(value) not in (int, float)):
            raise ValueError("config: size must be a number")
        if key == "source" and value not in ("ticker", "candle"):
            raise ValueError("config: source must be `ticker` or `candle`")
        out[key] = float(value) if key == "size" else value
    return out


class SmaCross(Strategy):
    def __init__(self, config: dict):
        config = read_config(config)
        fast, slow = config["fast"], config["slow"]
        if fast == 0 or fast >= slow:
            raise ValueError(f"config: need 0 < fast < slow, got {fast} and {slow}")
        instrument = views.find_instrument(config["symbol"])
        if instrument is None:
            raise ValueError(f"instrument {config['symbol']} is unknown or not granted")
        channel = Channel.TICKER if config["source"] == "ticker" else Channel.CANDLE1M
        feeds.subscribe(instrument.id, channel)
        self.instrument = instrument.id
        self.size = config["size"] if config["size"] > 0.0 else instrument.min_size * 10.0
        self.signal = Signal(fast, slow)
        self.working = None
        info(f"sma-cross-py on {config['symbol']} fast {fast} slow {slow} size {self.size} from {config['source']}")

    def on_cross(self, cross: str) -> None:
        """Acts on a crossover: at most one working order, long on UP, flat on DOWN."""
        if self.working is not None:
            return
        held = position_size(self.instrument)
        if cross == UP and held <= 0.0:
            request = market(self.instrument, Side.BUY, self.size)
        elif cross == DOWN and held > 0.0:
            request = reduce_only(market(self.instrument, Side.SELL, held))
        else:
            return
        order_id, denial = place(request)
        if denial is None:
            self.working = order_id
        else:
            warn(f"order denied: {denial.code} {denial.message}")

    def on_ticker(self, ticker) -> None:
        if ticker.instrument != self.instrument or ticker.bid <= 0.0 or ticker.ask <= 0.0:
            return
        cross = self.signal.update((ticker.bid + ticker.ask) / 2.0)
        if cross is not None:
            self.on_cross(cross)

    def on_candle(self, candle) -> None:
        if candle.instrument != self.instrument or not candle.confirmed or candle.close <= 0.0:
            return
        cross = self.signal.update(candle.close)
        if cross is not None:
            self.on_cross(cross)

    def on_order(self, order) -> None:
        done = order.state in (OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED)
        if done and self.working == order.client_order_id:
            self.working = None

    def on_risk_denied(self, denial) -> None:
        if denial.client_order_id is not None and denial.client_order_id == self.working:
            self.working = None

    def snapshot(self) -> bytes:
        # What survives a hot reload: the recent prices that fill both windows.
        return json.dumps({"prices": self.signal.recent()}, separators=(",", ":")).encode()

    def restore(self, state: bytes) -> None:
        try:
            prices = json.loads(state)["prices"]
            prices = [float(p) for p in prices]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"restore: {e}") from None
        fast, slow = self.signal.periods()
        self.signal = Signal(fast, slow)
        for price in prices:
            self.signal.update(price)


WitWorld = export_strategy(SmaCross)
