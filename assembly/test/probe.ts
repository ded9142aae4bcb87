// A test-only module for the engine tests (test/engines.test.ts): every value type across the
// host boundary, memory growth, traps. Built as build/probe.wasm with the device target's features.
@external("probe", "i32") declare function host_i32(a: i32, b: i32): i32;
@external("probe", "i64") declare function host_i64(a: i64): i64;
@external("probe", "f32") declare function host_f32(a: f32): f32;
@external("probe", "f64") declare function host_f64(a: f64): f64;
@external("probe", "void") declare function host_void(): void;

export function call_i32(a: i32, b: i32): i32 { return host_i32(a, b) + 1; }
export function call_i64(a: i64): i64 { return host_i64(a) + 1; }
export function call_f32(a: f32): f32 { return host_f32(a) * 2; }
export function call_f64(a: f64): f64 { return host_f64(a) * 2; }
export function call_void(): i32 { host_void(); return 7; }
export function grow(pages: i32): i32 { return memory.grow(pages); }
export function pages(): i32 { return memory.size(); }
export function poke(p: usize, v: u8): void { store<u8>(p, v); }
export function peek(p: usize): u8 { return load<u8>(p); }
export function trap(): void { unreachable(); }
export function out_of_bounds(): i32 { return load<i32>(0xfffffff0); }
export function divide(a: i32, b: i32): i32 { return a / b; }
