"""Small streaming indicators, the same arithmetic as the Rust SDK's (`sdk/src/indicators.rs`).

They add floats one at a time in an explicit loop rather than with `sum()`: CPython 3.12+ sums
floats with compensation, so `sum()` would round differently from the Rust SDK, and a strategy
ported from Rust would then decide differently on a tie.
"""


class Sma:
    """Simple moving average over the last `period` values.

    A running sum makes an update O(1), but its rounding errors add up over millions of
    updates; so every `period` updates the sum is computed afresh from the window. For
    comparisons that must be exact, count prices as integers (see the `sma-cross` example).
    """

    __slots__ = ("_window", "_len", "_next", "_sum", "_since_fresh")

    def __init__(self, period: int):
        period = max(int(period), 1)
        self._window = [0.0] * period
        self._len = 0
        self._next = 0
        self._sum = 0.0
        self._since_fresh = 0

    def update(self, value: float):
        """Adds a value; returns the average once `period` values have been seen, else None."""
        window = self._window
        period = len(window)
        if self._len < period:
            self._len += 1
            self._sum += value
        else:
            self._sum += value - window[self._next]
        window[self._next] = value
        self._next = 0 if self._next + 1 == period else self._next + 1
        self._since_fresh += 1
        if self._since_fresh >= period:
            self._since_fresh = 0
            total = 0.0
            for v in window[: self._len]:
                total += v
            self._sum = total
        return self.value()

    def value(self):
        """The current average once the window is full, else None."""
        period = len(self._window)
        return self._sum / period if self._len == period else None

    def period(self) -> int:
        """The window length."""
        return len(self._window)

    def values(self):
        """The values in the window, oldest first: what a strategy saves on hot reload."""
        filled = self._window[: self._len]
        split = min(self._next, self._len)
        return filled[split:] + filled[:split]


class Ema:
    """Exponential moving average with smoothing `2 / (period + 1)`."""

    __slots__ = ("_alpha", "_value")

    def __init__(self, period: int):
        self._alpha = 2.0 / (float(max(int(period), 1)) + 1.0)
        self._value = None

    def update(self, value: float) -> float:
        """Adds a value and returns the new average."""
        prev = self._value
        self._value = value if prev is None else prev + self._alpha * (value - prev)
        return self._value

    def value(self):
        """The current average, or None before the first value."""
        return self._value
