// The C framing (boards/runtime/core/frame.c) against the shared protocol vectors
// (test/vectors/protocol/vectors.json), byte for byte: every COBS case, the wire bytes of every frame,
// the receiver's delivery of every host-to-device frame, and the events of every to-device decode
// stream (frames and errors with code, req_type, seq, arg). The checks are test/runtime-vectors.ts's,
// which the Raspberry Pi cross builds pass too (test/runtime-cross.test.ts).
import { test } from 'uvu';
import { nativeBuild } from './runtime-helpers.ts';
import { cobsVectors, decodeVectors, frameVectors } from './runtime-vectors.ts';

const build = nativeBuild();

test('COBS: every vector', () => cobsVectors(build));
test('frames: the C encoder gives every frame\'s wire bytes; the receiver delivers every host-to-device frame', () => frameVectors(build));
test('decode: every to-device stream gives the vector\'s frames and errors, in order', () => decodeVectors(build));

test.run();
