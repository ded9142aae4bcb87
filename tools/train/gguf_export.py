"""GGUF (version 3) writer for llama models, stdlib only (checked against the `gguf` package's reader).
Ternary block linears are written as TQ2_0 when their rows are a multiple of 256 weights (ggml's
super-block); a block's f16 scale is its max |w|, the tensor's absmean scale, so TQ2_0 holds the
ternary weights exactly up to that scale's f16 rounding (relative error <= 2^-11; scales.json keeps
the f32 scales). Rows that are not a multiple of 256 are F16, and so is every block linear of a full-precision model
(`ternary=False`). Norms are F32, the embedding F16.
Shared classifier: no output.weight, as llama.cpp expects. Q/K are not permuted: llama2.c's RoPE
rotates adjacent pairs, which is what GGUF's llama architecture expects.

TQ2_0 block (256 weights, 66 bytes): 64 bytes qs then f16 d; in each 32-byte chunk j (128 weights),
weight l*32 + m is bits 2l..2l+1 of byte m, stored as w/d + 1 (0, 1, 2).
"""
import array
import struct

GGUF_MAGIC = 0x46554747  # "GGUF"
ALIGN = 32
T_F32, T_F16, T_TQ2_0 = 0, 1, 35
V_UINT32, V_INT32, V_FLOAT32, V_STRING, V_ARRAY = 4, 5, 6, 8, 9


def _s(text: str) -> bytes:
    b = text.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _kv(key: str, vtype: int, value) -> bytes:
    out = _s(key) + struct.pack("<I", vtype)
    if vtype == V_UINT32:
        return out + struct.pack("<I", value)
    if vtype == V_INT32:
        return out + struct.pack("<i", value)
    if vtype == V_FLOAT32:
        return out + struct.pack("<f", value)
    if vtype == V_STRING:
        return out + _s(value)
    etype, items = value
    out += struct.pack("<IQ", etype, len(items))
    if etype == V_STRING:
        return out + b"".join(_s(x) for x in items)
    return out + array.array({V_FLOAT32: "f", V_INT32: "i"}[etype], items).tobytes()


def tq2_0(values: "array.array") -> bytes:
    out = bytearray()
    for b in range(0, len(values), 256):
        x = values[b:b + 256]
        d = max(abs(v) for v in x)
        inv = 1.0 / d if d else 0.0
        qs = bytearray(64)
        for j in range(2):
            for m in range(32):
                q = 0
                for n in range(4):
                    xi = int(round(x[j * 128 + n * 32 + m] * inv)) + 1
                    q |= (xi & 3) << (2 * n)
                qs[j * 32 + m] = q
        out += qs + struct.pack("<e", d)
    return bytes(out)


def write_gguf(path: str, cfg: dict, t: dict, tokens: "list[tuple[bytes, float, int]]", name: str, ternary: bool = True) -> "dict[str, str]":
    """t: tensors by llama2.c kind (as export.write_legacy); tokens: (piece bytes, score, token type).
    ternary=False (a full-precision model): every block linear F16, none TQ2_0."""
    c = cfg
    head_dim = c["dim"] // c["n_heads"]
    kvs = [
        _kv("general.architecture", V_STRING, "llama"), _kv("general.name", V_STRING, name),
        _kv("llama.context_length", V_UINT32, c["seq_len"]), _kv("llama.embedding_length", V_UINT32, c["dim"]),
        _kv("llama.block_count", V_UINT32, c["n_layers"]), _kv("llama.feed_forward_length", V_UINT32, c["hidden_dim"]),
        _kv("llama.rope.dimension_count", V_UINT32, head_dim), _kv("llama.attention.head_count", V_UINT32, c["n_heads"]),
        _kv("llama.attention.head_count_kv", V_UINT32, c["n_kv_heads"]),
        _kv("llama.attention.layer_norm_rms_epsilon", V_FLOAT32, 1e-5), _kv("llama.vocab_size", V_UINT32, c["vocab_size"]),
        _kv("tokenizer.ggml.model", V_STRING, "llama"),
        _kv("tokenizer.ggml.tokens", V_ARRAY, (V_STRING, [p.decode("utf-8", "replace") for p, _, _ in tokens])),
        _kv("tokenizer.ggml.scores", V_ARRAY, (V_FLOAT32, [s for _, s, _ in tokens])),
        _kv("tokenizer.ggml.token_type", V_ARRAY, (V_INT32, [k for _, _, k in tokens])),
        _kv("tokenizer.ggml.bos_token_id", V_UINT32, 1), _kv("tokenizer.ggml.eos_token_id", V_UINT32, 2),
        _kv("tokenizer.ggml.unknown_token_id", V_UINT32, 0),
    ]
    f32 = lambda x: array.array("f", memoryview(x).cast("B").tobytes())
    tensors = [("token_embd.weight", t["tok"], [c["dim"], c["vocab_size"]], T_F16)]
    names = {"wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output", "w1": "ffn_gate", "w2": "ffn_down", "w3": "ffn_up"}
    kv_dim = c["dim"] * c["n_kv_heads"] // c["n_heads"]
    shapes = {"wq": [c["dim"], c["dim"]], "wk": [c["dim"], kv_dim], "wv": [c["dim"], kv_dim], "wo": [c["dim"], c["dim"]],
              "w1": [c["dim"], c["hidden_dim"]], "w2": [c["hidden_dim"], c["dim"]], "w3": [c["dim"], c["hidden_dim"]]}
    types = {}
    for i in range(c["n_layers"]):
        tensors.append((f"blk.{i}.attn_norm.weight", t["rms_att"][i], [c["dim"]], T_F32))
        tensors.append((f"blk.{i}.ffn_norm.weight", t["rms_ffn"][i], [c["dim"]], T_F32))
        for kind, gname in names.items():
            ne = shapes[kind]
            tensors.append((f"blk.{i}.{gname}.weight", t[kind][i], ne, T_TQ2_0 if ternary and ne[0] % 256 == 0 else T_F16))
    tensors.append(("output_norm.weight", t["rms_final"], [c["dim"]], T_F32))
    infos, blobs, offset = [], [], 0
    for tname, data, ne, ttype in tensors:
        vals = f32(data)
        blob = tq2_0(vals) if ttype == T_TQ2_0 else struct.pack(f"<{len(vals)}e", *vals) if ttype == T_F16 else vals.tobytes()
        types[tname] = {T_F32: "F32", T_F16: "F16", T_TQ2_0: "TQ2_0"}[ttype]
        infos.append(_s(tname) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", ttype, offset))
        pad = (-len(blob)) % ALIGN
        blobs.append(blob + b"\0" * pad)
        offset += len(blob) + pad
    head = struct.pack("<IIQQ", GGUF_MAGIC, 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(infos)
    with open(path, "wb") as f:
        f.write(head + b"\0" * ((-len(head)) % ALIGN))
        for b in blobs:
            f.write(b)
    return types


def read_gguf(path: str) -> "tuple[dict, dict[str, tuple[str, list[int], bytes]]]":
    """What write_gguf writes, read back (the smoke test's check of committed GGUF models; the project's
    own loader is host/formats/gguf.ts): metadata by key, and per tensor (type name, ne, raw bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<IIQQ", data, 0)
    if magic != GGUF_MAGIC or version != 3:
        raise ValueError(f"{path}: not GGUF v3 (magic {magic:#x}, version {version})")
    at = 24

    def string() -> str:
        nonlocal at
        (n,) = struct.unpack_from("<Q", data, at)
        at += 8 + n
        return data[at - n:at].decode("utf-8")

    def value(vtype: int):
        nonlocal at
        if vtype == V_STRING:
            return string()
        if vtype == V_ARRAY:
            etype, n = struct.unpack_from("<IQ", data, at)
            at += 12
            return [value(etype) for _ in range(n)]
        fmt = {V_UINT32: "<I", V_INT32: "<i", V_FLOAT32: "<f"}.get(vtype)
        if fmt is None:
            raise ValueError(f"{path}: metadata type {vtype} is not one write_gguf writes")
        (v,) = struct.unpack_from(fmt, data, at)
        at += 4
        return v

    kvs = {}
    for _ in range(n_kv):
        key = string()
        (vtype,) = struct.unpack_from("<I", data, at)
        at += 4
        kvs[key] = value(vtype)
    infos = []
    for _ in range(n_tensors):
        name = string()
        (nd,) = struct.unpack_from("<I", data, at)
        ne = list(struct.unpack_from(f"<{nd}Q", data, at + 4))
        ttype, off = struct.unpack_from("<IQ", data, at + 4 + 8 * nd)
        at += 4 + 8 * nd + 12
        infos.append((name, ttype, ne, off))
    base = at + (-at) % ALIGN
    sizes = {T_F32: lambda n: 4 * n, T_F16: lambda n: 2 * n, T_TQ2_0: lambda n: n // 256 * 66}
    names = {T_F32: "F32", T_F16: "F16", T_TQ2_0: "TQ2_0"}
    tensors = {}
    for name, ttype, ne, off in infos:
        if ttype not in sizes:
            raise ValueError(f"{path}: {name}: tensor type {ttype} is not one write_gguf writes")
        n = 1
        for e in ne:
            n *= e
        blob = data[base + off: base + off + sizes[ttype](n)]
        if len(blob) != sizes[ttype](n):
            raise ValueError(f"{path}: {name}: truncated")
        tensors[name] = (names[ttype], ne, blob)
    return kvs, tensors
