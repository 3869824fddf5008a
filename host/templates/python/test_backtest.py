"""Builds {{name}} and backtests it on the bundled sample (720 one-minute BTC-USDT candles).

Run it with `python3 -m unittest` in this directory. It needs the `tradebox` program: `$TRADEBOX`,
or `tradebox` on PATH.
"""

import json
import os
import shutil
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def tradebox():
    program = os.environ.get("TRADEBOX") or shutil.which("tradebox")
    if not program:
        # A failure, not a skip: a test that cannot run must not look like one that passed.
        raise AssertionError("no tradebox program: set TRADEBOX=/path/to/tradebox or put tradebox on PATH")
    return program


class Backtest(unittest.TestCase):
    def test_it_trades_on_the_sample_and_does_not_fail(self):
        program = tradebox()
        # Build exactly as you would by hand (its progress shows on stderr).
        subprocess.run([program, "plugin", "build", HERE], check=True)
        run = subprocess.run(
            [
                program, "backtest", os.path.join(HERE, "{{name}}.wasm"),
                "--instrument", "BTC-USDT",
                "--data", os.path.join(HERE, "data", "sample.csv"),
                "--config", json.dumps({"symbol": "BTC-USDT", "fast": 5, "slow": 20}),
                "--json",
            ],
            check=True, stdout=subprocess.PIPE, text=True,
        )
        # `--json` prints one JSON object, last on stdout.
        report = json.loads(run.stdout.strip().splitlines()[-1])
        plugin = report["plugins"][0]
        self.assertIsNone(plugin.get("fault"), "the plugin stopped during the run")
        self.assertEqual(plugin["bars"], 720)
        self.assertGreater(plugin["orders"], 0, "it placed no order on 720 bars")
        self.assertGreater(plugin["fills"], 0)


if __name__ == "__main__":
    unittest.main()
