"""Train one model of tools/train/configs/ on the KJV token files, evaluate, export.

    python3 tools/train/train.py --config tools/train/configs/esp32-260k.json --mode b158 \\
        --data models/tok512-data --out out/esp32-260k-b158

Writes model.bin (llama2.c legacy float32; a ternary model holds its dequantized values), model-q8.bin
(llama2.c version 2, int8 groups), model.gguf (GGUF with the tokenizer: ternary linears TQ2_0 where
their rows allow, F16 otherwise; a full-precision model's linears all F16), scales.json (every ternary tensor's absmean scale, to repack
exactly), result.json (validation perplexity, steps, time, hardware). `--ptq-from DIR` instead loads a
full-precision checkpoint, applies absmean ternary weights + int8 activations without training, and
only evaluates (the post-training baseline of docs/models.md's table).

QAT recipe options (defaults = the plain recipe every config was first trained with):
  --distill-from X   knowledge distillation: X is a full-precision model of the same shape trained by
                     this script (a run folder with ckpt.pt, or a llama2.c legacy model.bin); the loss is
                     --kd-alpha * cross-entropy + (1 - alpha) * T^2 * KL(teacher || student) at --kd-temp T
  --init-from X      start from that model's weights instead of random ones (QAT fine-tuning)
  --ternary-wd W     AdamW weight decay of the latent weights behind the ternary linears (others keep
                     the config's); 0 = none
  --min-lr-frac F    the cosine schedule ends at F * peak (0.1 by default)
A config's train.qat {"ternary_wd", "min_lr_frac"} sets the last two for its ternary modes (b158, a48).
  --compile          torch.compile the model (the small models are kernel-launch bound; falls back to eager)
  --time-limit S     stop training after S seconds (the best checkpoint so far is exported; marked in result.json)
"""
import argparse
import array
import json
import math
import os
import time

import torch
import torch.nn.functional as F

from export import read_legacy, rope_freqs, write_legacy, write_v2
from gguf_export import write_gguf
from tokenizer import read_tokenizer_bin
from model import BitLinear, Config, Transformer, absmean_ternary


def load_tokens(path: str) -> torch.Tensor:
    a = array.array("H")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return torch.tensor(a, dtype=torch.long)


@torch.no_grad()
def perplexity(model, tokens: torch.Tensor, seq_len: int, device: str, batch: int = 32) -> float:
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


def load_weights(model: Transformer, src: str, device: str) -> None:
    """Load a run folder's ckpt.pt, or a llama2.c legacy model.bin of the same shape, into model."""
    if os.path.isdir(src):
        model.load_state_dict(torch.load(os.path.join(src, "ckpt.pt"), map_location=device))
        return
    cfg, body = read_legacy(src)
    c = model.config
    want = dict(dim=c.dim, hidden_dim=c.hidden_dim, n_layers=c.n_layers, n_heads=c.n_heads, n_kv_heads=c.n_kv_heads, vocab_size=c.vocab_size, seq_len=c.seq_len)
    if cfg != want:
        raise SystemExit(f"{src}: shape {cfg} is not this config's {want}")
    flat = torch.tensor(body, dtype=torch.float32)
    at = 0

    def take(*shape):
        nonlocal at
        n = math.prod(shape)
        t = flat[at: at + n].view(*shape)
        at += n
        return t

    L = c.n_layers
    kv = c.n_kv_heads * (c.dim // c.n_heads)
    sd = {"tok_embeddings.weight": take(c.vocab_size, c.dim)}
    for kind, shape in (("attention_norm", (c.dim,)), ("attention.wq", (c.dim, c.dim)), ("attention.wk", (kv, c.dim)),
                        ("attention.wv", (kv, c.dim)), ("attention.wo", (c.dim, c.dim)), ("ffn_norm", (c.dim,)),
                        ("feed_forward.w1", (c.hidden_dim, c.dim)), ("feed_forward.w2", (c.dim, c.hidden_dim)),
                        ("feed_forward.w3", (c.hidden_dim, c.dim))):
        for i in range(L):
            sd[f"layers.{i}.{kind}.weight"] = take(*shape)
    sd["norm.weight"] = take(c.dim)
    model.load_state_dict(sd)


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temp: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher/T) || softmax(student/T)), mean over tokens."""
    s = F.log_softmax(student.float() / temp, dim=-1)
    t = F.log_softmax(teacher.float() / temp, dim=-1)
    return (t.exp() * (t - s)).sum(-1).mean() * temp * temp


class Compiled:
    """torch.compile'd forward with an eager fallback if compiling fails."""

    def __init__(self, model: torch.nn.Module, on: bool):
        self.eager = model
        self.fn = torch.compile(model) if on else None

    def __call__(self, *a):
        if self.fn is not None:
            try:
                return self.fn(*a)
            except Exception as e:  # noqa: BLE001
                print(f"compile failed, eager from now on: {type(e).__name__}: {str(e)[:300]}", flush=True)
                self.fn = None
        return self.eager(*a)

    def eval(self):
        self.eager.eval()

    def train(self):
        self.eager.train()


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
    if os.path.isfile(tokenizer):  # full precision: an F16 GGUF, half the size of the f32 model.bin
        types = write_gguf(os.path.join(out, "model.gguf"), cfg, t, gguf_tokens(tokenizer, c.vocab_size), os.path.basename(out), ternary)
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
    ap.add_argument("--distill-from", help="teacher: a full-precision run folder (ckpt.pt) or llama2.c legacy model.bin of the same shape")
    ap.add_argument("--kd-alpha", type=float, default=0.0, help="weight of the cross-entropy on the data; 1 - alpha on the teacher's KL")
    ap.add_argument("--kd-temp", type=float, default=1.0)
    ap.add_argument("--init-from", help="start from this model's weights (run folder or legacy model.bin)")
    ap.add_argument("--ternary-wd", type=float, help="weight decay of the ternary linears' latent weights (default: the config's)")
    ap.add_argument("--min-lr-frac", type=float, help="the cosine schedule's final lr as a fraction of the peak (default 0.1)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (eager fallback)")
    ap.add_argument("--time-limit", type=float, help="stop training after this many seconds")
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
    qat = tr.get("qat", {}) if args.mode != "fp" else {}  # a config's QAT recipe (ternary modes only)
    if args.ternary_wd is None:
        args.ternary_wd = qat.get("ternary_wd")
    if args.min_lr_frac is None:
        args.min_lr_frac = qat.get("min_lr_frac", 0.1)
    if args.lr:
        tr["lr"] = args.lr
    steps = args.steps or tr["steps"]
    wd = tr.get("weight_decay", 0.1)
    recipe = {}
    if args.init_from:
        load_weights(model, args.init_from, device)
        recipe["init_from"] = args.init_from
    if args.ternary_wd is None or args.mode == "fp":
        params = model.parameters()
    else:
        latent = {id(m.weight) for m in model.modules() if isinstance(m, BitLinear)}
        params = [{"params": [p for p in model.parameters() if id(p) in latent], "weight_decay": args.ternary_wd},
                  {"params": [p for p in model.parameters() if id(p) not in latent], "weight_decay": wd}]
        recipe["ternary_wd"] = args.ternary_wd
    opt = torch.optim.AdamW(params, lr=tr["lr"], betas=(0.9, 0.95), weight_decay=wd)
    teacher = None
    if args.distill_from:
        teacher = Transformer(Config(**spec["model"], mode="fp")).to(device)
        load_weights(teacher, args.distill_from, device)
        teacher.requires_grad_(False)
        teacher.eval()
        recipe.update(distill_from=args.distill_from, kd_alpha=args.kd_alpha, kd_temp=args.kd_temp,
                      teacher_val_ppl=perplexity(teacher, val, c.seq_len, device))
        teacher.eval()
        print(f"{args.out}: teacher val ppl {recipe['teacher_val_ppl']:.3f}", flush=True)
        teacher_fn = Compiled(teacher, args.compile)
    if args.min_lr_frac != 0.1:
        recipe["min_lr_frac"] = args.min_lr_frac
    fwd = Compiled(model, args.compile)
    gen = torch.Generator().manual_seed(spec["seed"])
    best, best_step, t0, log, stopped = float("inf"), 0, time.time(), [], None
    floor = args.min_lr_frac
    for step in range(steps + 1):
        if step == steps and steps > 10:
            recipe["train_steps_per_s"] = round((steps - 10) / (time.time() - t_rate), 2)  # after compiling, evals included
        if step % tr["eval_every"] == 0 or step == steps:
            ppl = perplexity(fwd, val, c.seq_len, device)
            log.append({"step": step, "val_ppl": ppl, "seconds": round(time.time() - t0, 1)})
            if step:
                log[-1]["train_ce"] = round(ce.item(), 4)
            print(f"{args.out}: step {step} val ppl {ppl:.3f}", flush=True)
            if ppl < best:
                best, best_step = ppl, step
                torch.save(model.state_dict(), os.path.join(args.out, "ckpt.pt"))
            if step == steps:
                break
            if args.time_limit and time.time() - t0 > args.time_limit:
                stopped = step
                print(f"{args.out}: time limit at step {step}", flush=True)
                break
        if step == 10:
            t_rate = time.time()
        lr = tr["lr"] * min(1.0, (step + 1) / tr["warmup"]) * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        ix = torch.randint(0, len(train) - c.seq_len - 1, (tr["batch"],), generator=gen)
        xb = torch.stack([train[i : i + c.seq_len] for i in ix]).to(device)
        yb = torch.stack([train[i + 1 : i + 1 + c.seq_len] for i in ix]).to(device)
        for attempt in range(2):
            try:
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
                    logits, ce = fwd(xb, yb)
                    loss = ce
                    if teacher is not None:
                        with torch.no_grad():
                            t_logits = teacher_fn(xb)
                        loss = args.kd_alpha * ce + (1 - args.kd_alpha) * kd_loss(logits, t_logits, args.kd_temp)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                break
            except Exception as e:  # noqa: BLE001
                if step or attempt or fwd.fn is None:
                    raise
                print(f"compiled step failed, eager from now on: {type(e).__name__}: {str(e)[:300]}", flush=True)
                fwd.fn = None
                if teacher is not None:
                    teacher_fn.fn = None
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.load_state_dict(torch.load(os.path.join(args.out, "ckpt.pt"), map_location=device))
    extra = export(model, args.out, os.path.join(args.data, "tokenizer.bin"))
    extra["test_ppl"] = perplexity(model, load_tokens(os.path.join(args.data, "test.u16")), c.seq_len, device)
    params = sum(p.numel() for p in model.parameters())
    result = {
        "mode": args.mode, "config": os.path.basename(args.config), "lr": tr["lr"], "params": params, "steps": steps, "best_step": best_step, **recipe,
        "val_ppl": best, "train_seconds": round(time.time() - t0, 1), "tokens_seen": steps * tr["batch"] * c.seq_len,
        "hardware": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__, "log": log, **extra,
    }
    if stopped is not None:
        result["stopped_by_time_limit_at_step"] = stopped
        result["tokens_seen"] = stopped * tr["batch"] * c.seq_len
    json.dump(result, open(os.path.join(args.out, "result.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "log"}))


if __name__ == "__main__":
    main()
