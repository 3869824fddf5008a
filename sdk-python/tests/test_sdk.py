"""The SDK's own logic, natively (no component): dispatch, indicators, export and helpers.

The SDK imports the bindings componentize-py generates (`wit_world`), so this generates them
first with the pinned componentize-py that `tradebox plugin build` installs (in
`$TRADEBOX_TOOLCHAINS` or `~/.cache/tradebox/toolchains`). Run from the repository root:
`python3 -m unittest discover -s sdk-python/tests`.
"""

import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLCHAINS = os.environ.get("TRADEBOX_TOOLCHAINS") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "tradebox", "toolchains"
)
COMPONENTIZE_PY = os.path.join(TOOLCHAINS, "componentize-py-0.25.1")

_bindings = tempfile.TemporaryDirectory()
if not os.path.isdir(COMPONENTIZE_PY):
    raise AssertionError(f"{COMPONENTIZE_PY} is missing: build any Python plugin once (`tradebox plugin build DIR`)")
subprocess.run(
    [sys.executable, os.path.join(COMPONENTIZE_PY, "bin", "componentize-py"), "-d", os.path.join(ROOT, "wit"),
     "-w", "strategy", "bindings", _bindings.name],
    check=True, env={**os.environ, "PYTHONPATH": COMPONENTIZE_PY},
)
sys.path[:0] = [_bindings.name, os.path.join(ROOT, "sdk-python")]

import tradebox_sdk as sdk  # noqa: E402
from tradebox_sdk import Err, Sma, Ema, Strategy, TickerColumns, Ticker, types  # noqa: E402


def ticker(i):
    f = float(i)
    return Ticker(i, 1000 + i, f + 0.1, f + 0.2, f + 0.3, f + 0.4, f + 0.5)


def fields(t):
    return (t.instrument, t.ts, t.bid, t.bid_size, t.ask, t.ask_size, t.last)


class Recorder(Strategy):
    def __init__(self, config):
        if config.get("fail"):
            raise ValueError("asked to fail")
        self.tickers, self.batches, self.other = [], 0, []

    def on_ticker(self, t):
        self.tickers.append(fields(t))

    def on_fill(self, f):
        self.other.append(("fill", f))

    def on_timer(self, t):
        self.other.append(("timer", t.id))

    def on_batch_end(self):
        self.batches += 1

    def snapshot(self):
        return bytes([len(self.tickers)])

    def restore(self, state):
        if len(state) != 1:
            raise ValueError("expected 1 byte")


class Dispatch(unittest.TestCase):
    def test_columns_reach_on_ticker_as_the_same_tickers_as_events(self):
        tickers = [ticker(i) for i in range(9)]
        columns = TickerColumns(
            [t.instrument for t in tickers], [t.ts for t in tickers],
            [p for t in tickers for p in (t.bid, t.bid_size, t.ask, t.ask_size, t.last)],
        )
        by_columns, by_events = Recorder({}), Recorder({})
        sdk.dispatch_tickers(by_columns, columns)
        sdk.dispatch(by_events, [types.Event_Ticker(t) for t in tickers])
        expected = [fields(t) for t in tickers]
        self.assertEqual(by_columns.tickers, expected)
        self.assertEqual(by_events.tickers, expected)
        self.assertEqual((by_columns.batches, by_events.batches), (1, 1))

    def test_inconsistent_columns_end_the_run(self):
        r = Recorder({})
        sdk.dispatch_tickers(r, TickerColumns([1, 2, 3], [10, 20, 30], [0.5] * 12))
        self.assertEqual((len(r.tickers), r.batches), (2, 1))

    def test_each_event_reaches_its_handler_in_order(self):
        r = Recorder({})
        sdk.dispatch(r, [types.Event_Timer(types.TimerFired(7, 1)), types.Event_Ticker(ticker(1)),
                         types.Event_Timer(types.TimerFired(8, 2))])
        self.assertEqual(r.other, [("timer", 7), ("timer", 8)])
        self.assertEqual(len(r.tickers), 1)


class Export(unittest.TestCase):
    def test_init_and_restore_errors_are_err_text(self):
        world = sdk.export_strategy(Recorder)()
        with self.assertRaises(Err) as e:
            world.restore(b"")
        self.assertEqual(e.exception.value, "restore called before init")
        with self.assertRaises(Err) as e:
            world.init('{"fail": true}')
        self.assertEqual(e.exception.value, "asked to fail")
        with self.assertRaises(Err) as e:
            world.init("[1]")
        self.assertIn("expected a JSON object", e.exception.value)
        with self.assertRaises(Err) as e:
            world.init("{")
        self.assertIn("config: not valid JSON", e.exception.value)
        world_class = type(world)
        world.init("")
        world.on_tickers(TickerColumns([1], [2], [1.0, 2.0, 3.0, 4.0, 5.0]))
        # A new WitWorld object sees the same strategy (componentize-py may make one per call).
        self.assertEqual(world_class().snapshot(), b"\x01")
        with self.assertRaises(Err) as e:
            world.restore(b"ab")
        self.assertEqual(e.exception.value, "expected 1 byte")

    def test_only_strategies_are_exported(self):
        with self.assertRaises(TypeError):
            sdk.export_strategy(object)


class Helpers(unittest.TestCase):
    def test_order_builders(self):
        r = sdk.reduce_only(sdk.market(3, sdk.Side.SELL, 0.5))
        self.assertEqual((r.instrument, r.side, r.kind, r.price, r.size, r.reduce_only),
                         (3, sdk.Side.SELL, sdk.OrderKind.MARKET, None, 0.5, True))
        p = sdk.post_only(3, sdk.Side.BUY, 100.0, 1.0)
        self.assertEqual((p.kind, p.price, p.reduce_only), (sdk.OrderKind.POST_ONLY, 100.0, False))
        self.assertEqual(sdk.with_kind(3, sdk.Side.BUY, sdk.OrderKind.MARKET, 5.0, 1.0).price, None)
        self.assertEqual(sdk.limit(3, sdk.Side.BUY, 99.0, 1.0).kind, sdk.OrderKind.LIMIT)

    def test_place_returns_the_denial_instead_of_raising(self):
        saved = sdk.orders.place
        try:
            sdk.orders.place = lambda req: (_ for _ in ()).throw(Err(sdk.Denial("RATE_LIMITED", "slow down", None, None)))
            order_id, denial = sdk.place(sdk.market(1, sdk.Side.BUY, 1.0))
            self.assertEqual((order_id, denial.code), (None, "RATE_LIMITED"))
            sdk.orders.place = lambda req: "abc"
            self.assertEqual(sdk.place(sdk.market(1, sdk.Side.BUY, 1.0)), ("abc", None))
        finally:
            sdk.orders.place = saved


class Indicators(unittest.TestCase):
    def test_sma_waits_for_a_full_window_then_slides(self):
        s = Sma(3)
        self.assertEqual([s.update(v) for v in (1.0, 2.0, 3.0, 7.0)], [None, None, 2.0, 4.0])

    def test_sma_values_are_the_window_oldest_first(self):
        s = Sma(3)
        s.update(1.0)
        s.update(2.0)
        self.assertEqual(s.values(), [1.0, 2.0])
        for v in (3.0, 4.0, 5.0, 6.0, 7.0):
            s.update(v)
            self.assertEqual(s.values(), [v - 2.0, v - 1.0, v])

    def test_sma_of_period_zero_is_one(self):
        s = Sma(0)
        self.assertEqual((s.period(), s.update(3.0), s.update(5.0), s.values()), (1, 3.0, 5.0, [5.0]))

    def test_ema(self):
        e = Ema(3)
        self.assertEqual((e.value(), e.update(10.0), e.update(20.0)), (None, 10.0, 15.0))


if __name__ == "__main__":
    unittest.main()
