// The training tools' CPU smoke test (tools/train/smoke.py, Python stdlib only) and the demo models.
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromRoot } from '../host/paths.ts';

test('tools/train smoke: corpus split, tokenizer.bin, both export formats, the committed models', () => {
  const r = spawnSync('python3', [fromRoot('tools', 'train', 'smoke.py')], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr || r.stdout);
  assert.match(r.stdout, /smoke: \d+ checks passed/);
});

test.run();
