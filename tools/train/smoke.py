"""The CPU smoke test of the training tools that CI runs (stdlib only: CI has no torch). It checks the
corpus parser and split, the tokenizer.bin writer/reader, both llama2.c export formats round-tripping,
and that every committed model in models/ reads back with its tokenizer and, for ternary models, holds
exactly {-s, 0, +s} per tensor with s from its scales.json. Training itself (loss going down) needs
torch and a GPU: `STEPS=20 bash tools/train/run_all.sh DATA OUT` is its smoke run.
"""
import array
import json
import os
import random
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from corpus import parse, split  # noqa: E402
from export import read_legacy, read_v2, rope_freqs, write_legacy, write_v2  # noqa: E402
from gguf_export import read_gguf, tq2_0, write_gguf  # noqa: E402
from tokenizer import read_tokenizer_bin, write_tokenizer_bin  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
checks = 0


def check(cond: bool, what: str) -> None:
    global checks
    if not cond:
        sys.exit(f"smoke: FAILED: {what}")
    checks += 1


def test_corpus() -> None:
    sample = "\nGenesis 1\n\n  1 In the beginning God created the heaven and the earth.\n  2 And the earth was without form.\n" \
             "\nRuth 1\n\n  1 Now it came to pass.\n\nDaniel 1\n\n  1 In the third year.\n\n1 John 1\n\n  1 That which was from the beginning.\n"
    books = parse(sample)
    check(list(books) == ["Genesis", "Ruth", "Daniel", "1 John"], f"books parsed: {list(books)}")
    parts = split(books)
    check(parts["val"] == ["Now it came to pass."] and parts["test"] == ["In the third year."], "whole books held out")
    check(len(parts["train"]) == 3, "train keeps the rest")


def test_tokenizer_bin() -> None:
    pieces = [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0), ("<0x0A>", 0.0), ("\u2581the", -1.5), ("\u2581LORD", -2.25)]
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "tokenizer.bin")
        write_tokenizer_bin(p, pieces)
        max_len, toks = read_tokenizer_bin(p, len(pieces))
    check(toks[1][0] == b"\n<s>\n" and toks[2][0] == b"\n</s>\n", "BOS/EOS written as llama2.c does")
    check(toks[4] == (b" the", -1.5) and toks[5][0] == b" LORD", "spaces and scores round-trip")
    check(max_len == max(len(b) for b, _ in toks), "max_token_length")


def random_model(cfg: dict, rng: random.Random) -> dict:
    d, h, L, kv = cfg["dim"], cfg["hidden_dim"], cfg["n_layers"], cfg["dim"] * cfg["n_kv_heads"] // cfg["n_heads"]
    r = lambda n: array.array("f", (rng.uniform(-1, 1) for _ in range(n)))
    return {"tok": r(cfg["vocab_size"] * d), "rms_att": [r(d) for _ in range(L)], "rms_ffn": [r(d) for _ in range(L)],
            "wq": [r(d * d) for _ in range(L)], "wk": [r(kv * d) for _ in range(L)], "wv": [r(kv * d) for _ in range(L)],
            "wo": [r(d * d) for _ in range(L)], "w1": [r(h * d) for _ in range(L)], "w2": [r(d * h) for _ in range(L)],
            "w3": [r(h * d) for _ in range(L)], "rms_final": r(d)}


def test_exports() -> None:
    cfg = dict(dim=16, hidden_dim=40, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=32, seq_len=8)
    t = random_model(cfg, random.Random(7))
    with tempfile.TemporaryDirectory() as d:
        real, imag = rope_freqs(4, 8)
        write_legacy(os.path.join(d, "m.bin"), cfg, t, real, imag)
        got_cfg, body = read_legacy(os.path.join(d, "m.bin"))
        check(got_cfg == cfg, f"legacy header round-trips: {got_cfg}")
        check(body[: len(t["tok"])] == t["tok"], "legacy embedding round-trips")
        wq_at = len(t["tok"]) + cfg["n_layers"] * cfg["dim"]
        check(body[wq_at: wq_at + 256] == t["wq"][0], "legacy wq[0] at its llama2.c offset")
        group = write_v2(os.path.join(d, "m8.bin"), cfg, t)
        got, g, payload = read_v2(os.path.join(d, "m8.bin"))
        check(g == group == 8 and got["dim"] == 16 and got["shared"] == 1, "v2 header")
        norms = array.array("f")
        norms.frombytes(payload[: 4 * (2 * 2 * 16 + 16)])
        check(norms[:16] == t["rms_att"][0], "v2 keeps norms in f32")
        q = array.array("b")
        q.frombytes(payload[4 * 80: 4 * 80 + 32 * 16])
        s = array.array("f")
        s.frombytes(payload[4 * 80 + 512: 4 * 80 + 512 + 4 * 64])
        err = max(abs(q[i] * s[i // 8] - t["tok"][i]) for i in range(512))
        check(err <= max(s) / 2 + 1e-6, f"v2 int8 embedding within half a step ({err})")
        # a full-precision model's GGUF: every block linear F16 (none TQ2_0, whatever its rows), norms F32
        toks = [(b"<unk>", 0.0, 2), (b"<s>", 0.0, 3), (b"</s>", 0.0, 3)] + [(b"t%d" % i, -i, 1) for i in range(3, 32)]
        types = write_gguf(os.path.join(d, "fp.gguf"), cfg, t, toks, "fp", ternary=False)
        kvs, tensors = read_gguf(os.path.join(d, "fp.gguf"))
        check(set(types.values()) == {"F16", "F32"}, f"fp GGUF types: {sorted(set(types.values()))}")
        check(kvs["llama.vocab_size"] == 32 and len(kvs["tokenizer.ggml.tokens"]) == 32, "fp GGUF vocab and tokens")
        kind, ne, blob = tensors["blk.1.ffn_down.weight"]
        back = struct.unpack(f"<{len(blob) // 2}e", blob)
        check(kind == "F16" and ne == [40, 16], f"fp GGUF ffn_down is F16 [40, 16] ({kind} {ne})")
        check(all(abs(a - b) <= abs(b) * 2 ** -11 + 2 ** -24 for a, b in zip(back, t["w2"][1])), "fp GGUF F16 values within f16 rounding")
        check(tensors["output_norm.weight"][0] == "F32", "fp GGUF norms F32")


def test_tq2_0() -> None:
    # ggml's TQ2_0: in each 128-weight half, weight l*32 + m is bits 2l..2l+1 of byte m, as w/d + 1
    rng = random.Random(3)
    s = 0.0371
    w = array.array("f", (s * rng.choice((-1, 0, 1)) for _ in range(512)))
    blob = tq2_0(w)
    check(len(blob) == 2 * 66, "TQ2_0: 66 bytes per 256 weights")
    back = []
    for b in range(2):
        qs, (d,) = blob[b * 66: b * 66 + 64], struct.unpack_from("<e", blob, b * 66 + 64)
        for j in range(2):
            for l in range(4):
                back.extend(((qs[j * 32 + m] >> (2 * l)) & 3) - 1 for m in range(32))
        check(abs(d - s) <= s * 2 ** -11, f"TQ2_0 block scale is the ternary scale up to f16 ({d} vs {s})")
    check(all(round(v / s) == t for v, t in zip(w, back)), "TQ2_0 trits round-trip")


def test_committed_models() -> None:
    models = os.path.join(ROOT, "models")
    found = 0
    for name in sorted(os.listdir(models)):
        d = os.path.join(models, name)
        if not os.path.isfile(os.path.join(d, "tokenizer.bin")):
            continue
        found += 1
        path = os.path.join(d, "model.bin")
        if not os.path.isfile(path):  # a model stored as GGUF alone (the F16 full-precision twins)
            kvs, tensors = read_gguf(os.path.join(d, "model.gguf"))
            vocab = kvs["llama.vocab_size"]
            _, toks = read_tokenizer_bin(os.path.join(d, "tokenizer.bin"), vocab)
            check(len(kvs["tokenizer.ggml.tokens"]) == vocab, f"{name}: model.gguf holds {vocab} tokens")
            check(kvs["tokenizer.ggml.scores"] == [sc for _, sc in toks], f"{name}: model.gguf's tokenizer is tokenizer.bin's")
            check(len(tensors) == 2 + 9 * kvs["llama.block_count"], f"{name}: model.gguf holds every tensor ({len(tensors)})")
            continue
        with open(path, "rb") as f:
            versioned = struct.unpack("<I", f.read(4))[0] == 0x616B3432  # llama2.c's version 2 magic
        if versioned:
            cfg, _, body = read_v2(path)
        else:
            cfg, body = read_legacy(path)
        check(cfg["vocab_size"] > 0, f"{name}: model.bin reads")
        read_tokenizer_bin(os.path.join(d, "tokenizer.bin"), cfg["vocab_size"])
        scales_path = os.path.join(d, "scales.json")
        if os.path.isfile(scales_path) and not versioned:
            scales = json.load(open(scales_path))["scales"]
            dim, L = cfg["dim"], cfg["n_layers"]
            at = cfg["vocab_size"] * dim + L * dim
            for i in range(L):
                s = scales[f"layers.{i}.attention.wq"]
                vals = {round(v / s, 4) for v in body[at + i * dim * dim: at + (i + 1) * dim * dim]}
                check(vals <= {-1.0, 0.0, 1.0}, f"{name}: wq[{i}] is ternary times its scale ({sorted(vals)[:5]})")
    check(found >= 5, f"models/ holds the demo models ({found})")


if __name__ == "__main__":
    test_corpus()
    test_tokenizer_bin()
    test_exports()
    test_tq2_0()
    test_committed_models()
    print(f"smoke: {checks} checks passed")
