// The engine interface on every engine (V8 and wasm3): values of every type across the host
// boundary, memory growth, traps and host errors become JS Errors. What only the wasm3 addon has to
// prove (views, lifetimes, leaks) is in test/wasm3-node.test.ts.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelHost } from '../host/engine/kernels.ts';
import type { HostFunction, Instance } from '../host/engine/types.ts';
import { fromRoot } from '../host/paths.ts';
import { quantizeAct } from '../host/quant/ref/act.ts';
import { TERNARY_REFS } from '../host/quant/ref/ternary.ts';
import { firstMismatch, randn, rng, testEngines } from './helpers.ts';

const probe = new Uint8Array(readFileSync(fromRoot('build', 'probe.wasm')));
const engines = await testEngines();

function probeImports(calls: string[], overrides: Partial<Record<string, HostFunction['fn']>> = {}) {
  return (_self: () => Instance): HostFunction[] => [
    { module: 'probe', name: 'i32', sig: 'i(ii)', fn: overrides.i32 ?? ((a: number, b: number) => (calls.push(`i32 ${a} ${b}`), a * b)) },
    { module: 'probe', name: 'i64', sig: 'I(I)', fn: overrides.i64 ?? ((a: bigint) => (calls.push(`i64 ${a}`), a * 2n)) },
    { module: 'probe', name: 'f32', sig: 'f(f)', fn: overrides.f32 ?? ((a: number) => (calls.push(`f32 ${a}`), a + 0.5)) },
    { module: 'probe', name: 'f64', sig: 'F(F)', fn: overrides.f64 ?? ((a: number) => (calls.push(`f64 ${a}`), a / 3)) },
    { module: 'probe', name: 'void', sig: 'v()', fn: overrides.void ?? (() => void calls.push('void')) },
    { module: 'env', name: 'abort', sig: 'v(iiii)', fn: () => { throw new Error('abort'); } },
  ];
}

for (const engine of engines) {
  const s = suite(`engine ${engine.name}`);

  s('host functions of every value type, both ways', () => {
    const calls: string[] = [];
    const inst = engine.instantiate(probe, probeImports(calls));
    assert.is(inst.call('call_i32', 6, 7), 43);
    assert.is(inst.call('call_i64', 1n << 40n), (1n << 41n) + 1n);
    assert.is(inst.call('call_f32', 1.25), 3.5);
    assert.is(inst.call('call_f64', 1.5), 1);
    assert.is(inst.call('call_void'), 7);
    assert.equal(calls, ['i32 6 7', `i64 ${1n << 40n}`, 'f32 1.25', 'f64 1.5', 'void']);
    inst.close();
  });

  s('memory views follow growth; writes land in linear memory', () => {
    const inst = engine.instantiate(probe, probeImports([]));
    const before = inst.memory().length;
    inst.memory()[100] = 42;
    assert.is(inst.call('peek', 100), 42);
    assert.is(inst.call('grow', 3), before >> 16);
    const after = inst.memory();
    assert.is(after.length, before + 3 * 65536);
    assert.is(after[100], 42);
    inst.call('poke', after.length - 1, 9);
    assert.is(inst.memory()[after.length - 1], 9);
    inst.close();
  });

  s('traps become Errors carrying the engine message, and the instance stays usable', () => {
    const inst = engine.instantiate(probe, probeImports([]));
    assert.throws(() => inst.call('trap'), /unreachable/i);
    assert.throws(() => inst.call('out_of_bounds'), /out of bounds/i);
    assert.throws(() => inst.call('divide', 1, 0), /divi/i);
    assert.is(inst.call('divide', 9, 3), 3);
    inst.close();
  });

  s('an exception in a host function surfaces as an Error with its message', () => {
    const inst = engine.instantiate(probe, probeImports([], { i32: () => { throw new Error('host says no'); } }));
    assert.throws(() => inst.call('call_i32', 1, 2), /host says no/);
    assert.is(inst.call('call_void'), 7);
    inst.close();
  });

  s('a missing import is a link error at instantiation, naming it', () => {
    const partial = (self: () => Instance) => probeImports([])(self).filter((h) => h.name !== 'f64');
    assert.throws(() => engine.instantiate(probe, partial), /probe.{0,16}f64/);
  });

  s('a memory limit stops growth past it', () => {
    const inst = engine.instantiate(probe, probeImports([]), { memoryLimitBytes: 4 * 65536 });
    assert.throws(() => inst.call('grow', 16), /over the limit of 262144/);
    inst.close();
  });

  s('the device build runs a kernel with the same result as the reference', () => {
    const host = KernelHost.create(engine, 'device');
    const r = rng(5);
    const t = TERNARY_REFS.tb1.quantize(randn(r, 32 * 256), 32, 256);
    const x = quantizeAct(randn(r, 256), 1, 256, 'i8');
    assert.is(firstMismatch(host.gemm(t, x, 'bitserial'), TERNARY_REFS.tb1.gemm(t, x)), -1);
    host.close();
  });

  s.run();
}
