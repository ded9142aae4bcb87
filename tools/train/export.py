"""Model export to llama2.c's checkpoint formats, one writer and one reader each (stdlib only, so the
CI smoke test needs no torch or numpy). Tensors are anything with the buffer protocol holding
little-endian float32 (numpy arrays, array('f')).

legacy (version 0, float32): int32 header dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size
  (negative: unshared classifier), seq_len; then token_embedding (vocab, dim), rms_att (L, dim),
  wq (L, dim, dim), wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim),
  w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim), rms_final (dim),
  freq_cis_real (seq_len, head_dim/2), freq_cis_imag (seq_len, head_dim/2).
version 2 (int8, Q8_0 groups): u32 magic 0x616b3432 'ak42', int32 version 2, the 7 int32 header
  fields, u8 shared_classifier, int32 group_size, zero padding to 256 bytes; float32 rms_att (all
  layers), rms_ffn, rms_final; then per tensor (embedding, wq.., wk.., wv.., wo.., w1.., w2.., w3..)
  its int8 values followed by its float32 group scales (scale = max|w| / 127 per group).
"""
import array
import math
import struct

HEADER = struct.Struct("<7i")
MAGIC = 0x616B3432


def _f32(t) -> array.array:
    a = array.array("f")
    a.frombytes(memoryview(t).cast("B").tobytes())
    return a


def legacy_order(names_by_kind: "dict[str, list]") -> list:
    """The tensor order of the legacy format, given tensors grouped by kind (lists per layer)."""
    k = names_by_kind
    return [k["tok"]] + k["rms_att"] + k["wq"] + k["wk"] + k["wv"] + k["wo"] + k["rms_ffn"] + k["w1"] + k["w2"] + k["w3"] + [k["rms_final"]]


def write_legacy(path: str, cfg: dict, t: "dict[str, list]", freq_real, freq_imag) -> None:
    with open(path, "wb") as f:
        f.write(HEADER.pack(cfg["dim"], cfg["hidden_dim"], cfg["n_layers"], cfg["n_heads"], cfg["n_kv_heads"], cfg["vocab_size"], cfg["seq_len"]))
        for tensor in legacy_order(t) + [freq_real, freq_imag]:
            _f32(tensor).tofile(f)


def read_legacy(path: str) -> "tuple[dict, array.array]":
    with open(path, "rb") as f:
        head = f.read(HEADER.size)
        body = array.array("f")
        body.frombytes(f.read())
    dim, hidden, layers, heads, kv, vocab, seq = HEADER.unpack(head)
    cfg = dict(dim=dim, hidden_dim=hidden, n_layers=layers, n_heads=heads, n_kv_heads=kv, vocab_size=abs(vocab), seq_len=seq)
    kv_dim = dim * kv // heads
    want = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * dim * hidden) + dim + seq * (dim // heads)
    if len(body) != want:
        raise ValueError(f"{path}: {len(body)} floats after the header, expected {want} for this config")
    return cfg, body


def quantize_q80(w: array.array, group: int) -> "tuple[array.array, array.array]":
    q, s = array.array("b"), array.array("f")
    for g in range(0, len(w), group):
        chunk = w[g:g + group]
        scale = max(abs(v) for v in chunk) / 127.0
        s.append(scale)
        q.extend(0 if scale == 0 else max(-127, min(127, round(v / scale))) for v in chunk)
    return q, s


def group_size_for(cfg: dict) -> int:
    g = 64
    while cfg["dim"] % g != 0 or cfg["hidden_dim"] % g != 0:
        g //= 2
    return g


def write_v2(path: str, cfg: dict, t: "dict[str, list]") -> int:
    group = group_size_for(cfg)
    with open(path, "wb") as f:
        head = struct.pack("<Ii", MAGIC, 2) + HEADER.pack(cfg["dim"], cfg["hidden_dim"], cfg["n_layers"], cfg["n_heads"], cfg["n_kv_heads"], cfg["vocab_size"], cfg["seq_len"])
        head += struct.pack("<Bi", 1, group)
        f.write(head + b"\0" * (256 - len(head)))
        for tensor in t["rms_att"] + t["rms_ffn"] + [t["rms_final"]]:
            _f32(tensor).tofile(f)
        for tensor in [t["tok"]] + t["wq"] + t["wk"] + t["wv"] + t["wo"] + t["w1"] + t["w2"] + t["w3"]:
            q, s = quantize_q80(_f32(tensor), group)
            q.tofile(f)
            s.tofile(f)
    return group


def read_v2(path: str) -> "tuple[dict, int, bytes]":
    with open(path, "rb") as f:
        data = f.read()
    magic, version = struct.unpack_from("<Ii", data, 0)
    if magic != MAGIC or version != 2:
        raise ValueError(f"{path}: magic {magic:#x} version {version}, expected {MAGIC:#x} version 2")
    dim, hidden, layers, heads, kv, vocab, seq = HEADER.unpack_from(data, 8)
    shared, group = struct.unpack_from("<Bi", data, 36)
    return dict(dim=dim, hidden_dim=hidden, n_layers=layers, n_heads=heads, n_kv_heads=kv, vocab_size=vocab, seq_len=seq, shared=shared), group, data[256:]


def rope_freqs(head_dim: int, seq_len: int, theta: float = 10000.0) -> "tuple[array.array, array.array]":
    real, imag = array.array("f"), array.array("f")
    for pos in range(seq_len):
        for i in range(0, head_dim, 2):
            a = pos * (1.0 / theta ** (i / head_dim))
            real.append(math.cos(a))
            imag.append(math.sin(a))
    return real, imag
