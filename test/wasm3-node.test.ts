// The wasm3-node addon (tools/wasm3-node) on its own: its raw API, what it promises about memory
// views, errors and lifetimes, and the device build through the Engine interface against V8.
// The interface tests every engine shares are in test/engines.test.ts.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { tryEngine } from '../host/engine/index.ts';
import { baseImports } from '../host/engine/imports.ts';
import { KernelHost } from '../host/engine/kernels.ts';
import { v8Engine } from '../host/engine/v8.ts';
import { loadAddon } from '../host/engine/wasm3.ts';
import { fromRoot } from '../host/paths.ts';
import { quantizeAct } from '../host/quant/ref/act.ts';
import { TERNARY_REFS } from '../host/quant/ref/ternary.ts';
import { firstMismatch, randn, rng } from './helpers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r)); // napi finalizers run after the collection
  }
};

const probe = new Uint8Array(readFileSync(fromRoot('build', 'probe.wasm')));
const device = new Uint8Array(readFileSync(fromRoot('build', 'device.wasm')));
const load = await tryEngine('wasm3');
const PAGE = 65536;

const w3 = suite('wasm3 addon');

w3('loads (required in CI), and reports the wasm3 it carries', () => {
  if (process.env.CI) assert.ok(load.engine, `wasm3 must load in CI: ${load.error}`);
  if (!load.engine) {
    process.stderr.write(`warning: wasm3-node not tested: ${load.error}\n`);
    return;
  }
  assert.match(loadAddon().wasm3Version(), /^\d+\.\d+\.\d+$/);
});

if (load.engine) {
  const { Runtime } = loadAddon();
  type Rt = InstanceType<typeof Runtime>;
  const linkProbe = (rt: Rt, overrides: Record<string, (...a: any[]) => any> = {}) => {
    const fns: Record<string, [string, (...a: any[]) => any]> = {
      i32: ['i(ii)', (a: number, b: number) => a * b],
      i64: ['I(I)', (a: bigint) => a * 2n],
      f32: ['f(f)', (a: number) => a + 0.5],
      f64: ['F(F)', (a: number) => a / 3],
      void: ['v()', () => {}],
    };
    for (const [name, [sig, fn]] of Object.entries(fns)) rt.link('probe', name, sig, overrides[name] ?? fn);
  };
  const probeRt = (overrides = {}, limit?: number) => {
    const rt = new Runtime(64 * 1024, limit);
    rt.load(probe);
    linkProbe(rt, overrides);
    rt.instantiate();
    return rt;
  };

  w3('every value type crosses both ways; i64 as bigint, f32 rounded as wasm rounds it', () => {
    const rt = probeRt();
    assert.is(rt.call('call_i32', [6, 7]), 43);
    assert.is(rt.call('call_i32', [0x7fffffff, 1]), -0x80000000); // i32 wraps: 2^31-1 + 1
    assert.is(rt.call('call_i64', [-(1n << 62n)]), -(1n << 63n) + 1n);
    assert.is(rt.call('call_f32', [0.1]), Math.fround(Math.fround(Math.fround(0.1) + 0.5) * 2));
    assert.is(rt.call('call_f64', [0.1]), (0.1 / 3) * 2);
    assert.is(rt.call('poke', [8, 0x1ff]), undefined); // a void export; the u8 argument keeps its low byte
    assert.is(rt.call('peek', [8]), 0xff);
    assert.ok(rt.has('call_i32'));
    assert.not.ok(rt.has('nope'));
    rt.free();
  });

  w3('arguments are checked against the export', () => {
    const rt = probeRt();
    assert.throws(() => rt.call('call_i32', [1]), /takes 2 arguments, got 1/);
    assert.throws(() => rt.call('nope', []), /function lookup failed.*'nope'/);
    rt.free();
  });

  w3('what a host function throws is rethrown by the call as it is; the runtime stays usable', () => {
    const rt = probeRt({
      i32: () => { throw new RangeError('host says no'); },
      f64: () => { throw 'a string'; },
    });
    const thrown = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      assert.unreachable('it did not throw');
    };
    const e = thrown(() => rt.call('call_i32', [1, 2]));
    assert.ok(e instanceof RangeError && e.message === 'host says no', 'the very exception is rethrown, as V8 does');
    assert.is(thrown(() => rt.call('call_f64', [1])), 'a string');
    assert.is(rt.call('call_i64', [2n]), 5n);
    rt.free();
  });

  w3('traps carry wasm3\'s message and the export', () => {
    const rt = probeRt();
    assert.throws(() => rt.call('trap', []), /^wasm3: \[trap\] unreachable executed \(in 'trap'\)$/);
    assert.throws(() => rt.call('out_of_bounds', []), /\[trap\] out of bounds memory access.*'out_of_bounds'/);
    assert.throws(() => rt.call('divide', [1, 0]), /\[trap\] integer divide by zero/);
    rt.free();
  });

  w3('link errors: a missing import at instantiate(), a bad signature at link()', () => {
    const rt = new Runtime(64 * 1024);
    rt.load(probe);
    rt.link('probe', 'i32', 'i(ii)', () => 0);
    assert.throws(() => rt.instantiate(), /missing imported function.*'probe\.(i64|f32|f64|void)'/);
    assert.throws(() => rt.link('probe', 'f32', 'F(F)', () => 0), /signature mismatch.*probe\.f32 F\(F\)/);
    assert.throws(() => rt.link('probe', 'f32', 'x(f)', () => 0), /bad wasm3 signature 'x\(f\)'/);
    rt.free();
    assert.throws(() => new Runtime(1024).load(new Uint8Array([0, 1, 2, 3])), /^wasm3: parse: /);
  });

  w3('a host function cannot re-enter or free its runtime (wasm3 calls do not nest)', () => {
    let rt: Rt;
    rt = probeRt({ void: () => rt.call('pages', []), i32: () => rt.free() });
    assert.throws(() => rt.call('call_void', []), /cannot call an export from inside a host function/);
    assert.throws(() => rt.call('call_i32', [1, 2]), /cannot free a runtime from inside one of its own calls/);
    assert.is(rt.call('pages', []), 1);
    rt.free();
    assert.throws(() => rt.call('pages', []), /the runtime was freed/);
    assert.is(rt.memory().length, 0);
  });

  w3('memory views: zero-copy, detached when memory moves, valid inside host functions', () => {
    let seen = -1;
    let rt: Rt;
    rt = probeRt({ void: () => { seen = rt.memory()[rt.memorySize() - 1]; } });
    const view = rt.memory();
    assert.is(view.length, rt.memorySize());
    view[100] = 42;
    assert.is(rt.call('peek', [100]), 42);
    rt.call('poke', [101, 7]);
    assert.is(view[101], 7);
    assert.is(rt.call('grow', [64]), 1);
    assert.is(view.length, 0, 'a view taken before memory moved must be detached');
    const grown = rt.memory();
    assert.is(grown.length, 65 * PAGE);
    assert.is(grown[100], 42);
    rt.call('poke', [65 * PAGE - 1, 9]);
    rt.call('call_void', []);
    assert.is(seen, 9);
    rt.free();
    assert.is(grown.length, 0, 'views are detached when the runtime is freed');
  });

  w3('a view keeps its runtime alive', async () => {
    const make = () => {
      const rt = probeRt();
      rt.call('poke', [200, 77]);
      return rt.memory().subarray(200, 201);
    };
    const v = make();
    for (let i = 0; i < 50; i++) make();
    await settle();
    assert.is(v[0], 77);
  });

  w3('memoryLimitBytes: memory.grow returns -1 past it, as on a board', () => {
    const rt = probeRt({}, 4 * PAGE);
    assert.is(rt.call('grow', [3]), 1);
    assert.is(rt.call('grow', [1]), -1);
    assert.is(rt.memorySize(), 4 * PAGE);
    rt.free();
    assert.throws(() => new Runtime(1024, PAGE - 1).load(probe), /starts with 1 pages of memory, over the limit of 0/);
  });

  // 1000 runtimes each holding over 1 MiB of linear memory and JS closures: a leak shows as about
  // 1 GiB. Runtimes nobody frees must be collected too (their closures point back at them).
  const cycles = async (free: boolean) => {
    let collected = 0;
    const registry = new FinalizationRegistry(() => collected++);
    const cycle = () => {
      const rt = new Runtime(64 * 1024);
      rt.load(device);
      const ballast = new Uint8Array(64 * 1024);
      for (const h of baseImports()(() => assert.unreachable('no host call expected') as never)) {
        rt.link(h.module, h.name, h.sig, (...args: any[]) => ((ballast[0] = rt.memorySize()), h.fn(...args)));
      }
      rt.instantiate();
      rt.call('arena_alloc', [1 << 20]);
      rt.memory()[0] = 1;
      registry.register(rt, 0);
      if (free) rt.free();
    };
    for (let i = 0; i < 100; i++) cycle(); // warm up allocators
    await settle();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 1000; i++) {
      cycle();
      if (i % 100 === 99) await settle();
    }
    await settle();
    return { grown: process.memoryUsage().rss - before, collected };
  };

  w3('1000 runtimes created and freed do not leak', async () => {
    const { grown } = await cycles(true);
    assert.ok(grown < 32 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(1)} MiB over 1000 runtimes`);
  });

  w3('1000 runtimes dropped without free() are collected', async () => {
    const { grown, collected } = await cycles(false);
    assert.ok(collected >= 1000, `only ${collected} of 1100 runtimes were collected`);
    assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(1)} MiB over 1000 runtimes`);
  });

  w3('the device build: every function compiles under wasm3; arena_alloc and a kernel match V8', () => {
    const engine = load.engine!;
    const inst = engine.instantiate(device, baseImports()); // compiles every function
    const v8 = v8Engine.instantiate(device, baseImports());
    for (const bytes of [1, 100, 1 << 20, 3]) assert.is(inst.call('arena_alloc', bytes), v8.call('arena_alloc', bytes));
    assert.is(inst.memory().length, v8.memory().length);
    inst.close();
    const r = rng(11);
    const hosts = [KernelHost.create(engine, 'device'), KernelHost.create(v8Engine, 'device')];
    for (const [format, variant] of [['tb1', 'bitserial'], ['tq2', 'naive']] as const) {
      const t = TERNARY_REFS[format].quantize(randn(r, 64 * 512), 64, 512);
      const x = quantizeAct(randn(r, 512 * 3), 3, 512, 'i8');
      const [a, b] = hosts.map((h) => h.gemm(t, x, variant));
      assert.is(firstMismatch(a, b), -1, `${format}/${variant}: wasm3 differs from V8`);
    }
    for (const h of hosts) h.close();
  });
}

w3.run();
