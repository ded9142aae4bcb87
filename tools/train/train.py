"""Train one model of tools/train/configs/ on the KJV token files, evaluate, export.

    python3 tools/train/train.py --config tools/train/configs/esp32-260k.json --mode b158 \\
        --data models/tok512-data --out out/esp32-260k-b158

Writes model.bin (llama2.c legacy float32; a ternary model holds its dequantized values), model-q8.bin
(llama2.c version 2, int8 groups), scales.json (every ternary tensor's absmean scale, to repack
exactly), result.json (validation perplexity, steps, time, hardware). `--ptq-from DIR` instead loads a
full-precision checkpoint, applies absmean ternary weights + int8 activations without training, and
only evaluates (the post-training baseline of the README's table).
"""
import argparse
import array
import json
import math
import os
import time

import torch

from export import rope_freqs, write_legacy, write_v2
from gguf_export import write_gguf
from tokenizer import read_tokenizer_bin
from model import Config, Transformer, absmean_ternary


def load_tokens(path: str) -> torch.Tensor:
    a = array.array("H")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return torch.tensor(a, dtype=torch.long)


@torch.no_grad()
def perplexity(model: Transformer, tokens: torch.Tensor, seq_len: int, device: str, batch: int = 32) -> float:
    model.eval()
    n = (len(tokens) - 1) // seq_len
    x = tokens[: n * seq_len].view(n, seq_len)
    y = tokens[1 : n * seq_len + 1].view(n, seq_len)
    total, count = 0.0, 0
    for i in range(0, n, batch):
        xb, yb = x[i : i + batch].to(device), y[i : i + batch].to(device)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            _, loss = model(xb, yb)
        total += loss.item() * xb.numel()
        count += xb.numel()
    model.train()
    return math.exp(total / count)


def gguf_tokens(path: str, vocab: int) -> "list[tuple[bytes, float, int]]":
    """tokenizer.bin pieces back in sentencepiece spelling, with GGUF token types."""
    _, toks = read_tokenizer_bin(path, vocab)
    out = []
    for i, (piece, score) in enumerate(toks):
        if i in (1, 2):
            out.append(((b"<s>", b"</s>")[i - 1], score, 3))  # control
        elif i == 0:
            out.append((piece, score, 2))  # unknown
        elif piece.startswith(b"<0x") and piece.endswith(b">") and len(piece) == 6:
            out.append((piece, score, 6))  # byte fallback
        else:
            out.append((piece.replace(b" ", "\u2581".encode()), score, 1))
    return out


def export(model: Transformer, out: str, tokenizer: str) -> dict:
    c = model.config
    ternary = c.mode != "fp"
    scales = {}
    t = {"tok": model.tok_embeddings.weight, "rms_att": [], "rms_ffn": [], "wq": [], "wk": [], "wv": [], "wo": [], "w1": [], "w2": [], "w3": []}
    for layer in model.layers:
        t["rms_att"].append(layer.attention_norm.weight)
        t["rms_ffn"].append(layer.ffn_norm.weight)
    t["rms_final"] = model.norm.weight
    for name, lin in model.block_linears():
        w = lin.weight.detach().float()
        if ternary:
            trits, s = absmean_ternary(w)
            w = trits * s
            scales[name] = s.item()
        t[name.split(".")[-1]].append(w)
    np = lambda x: x.detach().float().contiguous().cpu().numpy()
    t = {k: ([np(x) for x in v] if isinstance(v, list) else np(v)) for k, v in t.items()}
    cfg = dict(dim=c.dim, hidden_dim=c.hidden_dim, n_layers=c.n_layers, n_heads=c.n_heads, n_kv_heads=c.n_kv_heads, vocab_size=c.vocab_size, seq_len=c.seq_len)
    real, imag = rope_freqs(c.dim // c.n_heads, c.seq_len)
    write_legacy(os.path.join(out, "model.bin"), cfg, t, real, imag)
    group = write_v2(os.path.join(out, "model-q8.bin"), cfg, t)
    extra = {"v2_group_size": group}
    if ternary and os.path.isfile(tokenizer):
        types = write_gguf(os.path.join(out, "model.gguf"), cfg, t, gguf_tokens(tokenizer, c.vocab_size), os.path.basename(out))
        extra["gguf_types"] = sorted(set(types.values()))
    if ternary:
        with open(os.path.join(out, "scales.json"), "w") as f:
            json.dump({"format": "absmean ternary, one f32 scale per tensor: w = scale * trit", "scales": scales}, f, indent=1)
    return extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--mode", choices=["fp", "b158", "a48"], default="fp")
    ap.add_argument("--data", required=True, help="folder with train.u16 and val.u16 (tokenizer.py output)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, help="override the config's steps (smoke tests)")
    ap.add_argument("--lr", type=float, help="override the config's peak learning rate")
    ap.add_argument("--ptq-from", help="a full-precision run's folder: evaluate it ternarized, no training")
    args = ap.parse_args()
    spec = json.load(open(args.config))
    torch.manual_seed(spec["seed"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    os.makedirs(args.out, exist_ok=True)
    c = Config(**spec["model"], mode=args.mode, dropout=spec["train"].get("dropout", 0.0))
    model = Transformer(c).to(device)
    val = load_tokens(os.path.join(args.data, "val.u16"))
    if args.ptq_from:
        model.load_state_dict(torch.load(os.path.join(args.ptq_from, "ckpt.pt"), map_location=device))
        model.set_mode("b158")
        ppl = perplexity(model, val, c.seq_len, device)
        result = {"mode": "b158-ptq", "val_ppl": ppl, "from": args.ptq_from}
        json.dump(result, open(os.path.join(args.out, "result.json"), "w"), indent=1)
        print(json.dumps(result))
        return
    train = load_tokens(os.path.join(args.data, "train.u16"))
    tr = spec["train"]
    if args.lr:
        tr["lr"] = args.lr
    steps = args.steps or tr["steps"]
    opt = torch.optim.AdamW(model.parameters(), lr=tr["lr"], betas=(0.9, 0.95), weight_decay=tr.get("weight_decay", 0.1))
    gen = torch.Generator().manual_seed(spec["seed"])
    best, best_step, t0, log = float("inf"), 0, time.time(), []
    for step in range(steps + 1):
        if step % tr["eval_every"] == 0 or step == steps:
            ppl = perplexity(model, val, c.seq_len, device)
            log.append({"step": step, "val_ppl": ppl, "seconds": round(time.time() - t0, 1)})
            print(f"{args.out}: step {step} val ppl {ppl:.3f}", flush=True)
            if ppl < best:
                best, best_step = ppl, step
                torch.save(model.state_dict(), os.path.join(args.out, "ckpt.pt"))
            if step == steps:
                break
        lr = tr["lr"] * min(1.0, (step + 1) / tr["warmup"]) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        ix = torch.randint(0, len(train) - c.seq_len - 1, (tr["batch"],), generator=gen)
        xb = torch.stack([train[i : i + c.seq_len] for i in ix]).to(device)
        yb = torch.stack([train[i + 1 : i + 1 + c.seq_len] for i in ix]).to(device)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            _, loss = model(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.load_state_dict(torch.load(os.path.join(args.out, "ckpt.pt"), map_location=device))
    extra = export(model, args.out, os.path.join(args.data, "tokenizer.bin"))
    extra["test_ppl"] = perplexity(model, load_tokens(os.path.join(args.data, "test.u16")), c.seq_len, device)
    params = sum(p.numel() for p in model.parameters())
    result = {
        "mode": args.mode, "config": os.path.basename(args.config), "lr": tr["lr"], "params": params, "steps": steps, "best_step": best_step,
        "val_ppl": best, "train_seconds": round(time.time() - t0, 1), "tokens_seen": steps * tr["batch"] * c.seq_len,
        "hardware": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__, "log": log, **extra,
    }
    json.dump(result, open(os.path.join(args.out, "result.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "log"}))


if __name__ == "__main__":
    main()
