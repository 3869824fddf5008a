// Builds the strategy and backtests it on data/sample.csv (720 one-minute BTC-USDT candles).
// `npm test` runs it; the tradebox program is $TRADEBOX, or `tradebox` on PATH.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const tradebox = process.env.TRADEBOX || 'tradebox';

test('{{name}} builds, trades on the sample data and never fails', { timeout: 600_000 }, () => {
  execFileSync(tradebox, ['plugin', 'build', '.'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  const args = ['backtest', '{{name}}.wasm', '--instrument', 'BTC-USDT', '--data', 'data/sample.csv', '--json'];
  const out = execFileSync(tradebox, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const report = JSON.parse(out.trim().split('\n').at(-1)); // --json prints one object, last
  const [run] = report.plugins;
  assert.equal(run.fault, null, 'the plugin ran to the end');
  assert.ok(run.orders > 0, `it placed orders: ${JSON.stringify(run)}`);
  assert.equal(run.denied, 0, 'the host refused none of them');
  assert.equal(run.fills, run.orders, 'every market order filled');
});
