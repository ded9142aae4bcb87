"""A llama2.c-style llama (the architecture the edge-flash runtime runs), with BitNet b1.58 QAT.

RMSNorm pre-norm, RoPE on interleaved pairs (llama2.c / Meta layout), grouped-query attention,
SwiGLU feed-forward, final RMSNorm, classifier shared with the token embedding.

mode 'fp': plain float linears. mode 'b158': every linear inside the blocks is a BitLinear: weights
ternary by absmean (one scale per tensor), activations int8 per token by absmax, straight-through
estimator for both. mode 'a48': the same with int4 activations (BitNet a4.8's activation width).
The embedding and classifier stay float, as in BitNet. BitNet's extra sub-layer norms (before the
attention output and the FFN down projection) are left out, so that the exported model is exactly
the llama2.c architecture the runtime executes; the pre-norms feed q/k/v and gate/up as in llama.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    mode: str = "fp"  # fp | b158 | a48
    dropout: float = 0.0
    norm_eps: float = 1e-5


def absmean_ternary(w: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
    """(trits in {-1,0,1}, scale): w ~ scale * trits with scale = mean |w| (BitNet b1.58)."""
    scale = w.abs().mean().clamp(min=1e-8)
    return (w / scale).round().clamp(-1, 1), scale


def act_quant(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-token symmetric absmax quantization, returned dequantized (int8: qmax 127, int4: 7)."""
    qmax = 127 if bits == 8 else 7
    s = qmax / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * s).round().clamp(-qmax, qmax) / s


class BitLinear(nn.Linear):
    def __init__(self, fan_in: int, fan_out: int, mode: str):
        super().__init__(fan_in, fan_out, bias=False)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "fp":
            return F.linear(x, self.weight)
        trits, scale = absmean_ternary(self.weight)
        w = self.weight + (trits * scale - self.weight).detach()  # straight-through
        xq = x + (act_quant(x, 8 if self.mode == "b158" else 4) - x).detach()
        return F.linear(xq, w)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_tables(head_dim: int, seq_len: int, theta: float = 10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.outer(torch.arange(seq_len).float(), freqs)
    return torch.cos(angles), torch.sin(angles)  # (seq_len, head_dim/2): llama2.c's freq_cis_real/imag


def apply_rope(x, cos, sin):
    # x: (B, T, H, D), pairs (2i, 2i+1) rotated together as in llama2.c
    xr, xi = x.float().reshape(*x.shape[:-1], -1, 2).unbind(-1)
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.stack((xr * cos - xi * sin, xr * sin + xi * cos), dim=-1).flatten(3)
    return out.type_as(x)


class Attention(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.n_heads, self.n_kv = c.n_heads, c.n_kv_heads
        self.head_dim = c.dim // c.n_heads
        self.wq = BitLinear(c.dim, c.n_heads * self.head_dim, c.mode)
        self.wk = BitLinear(c.dim, c.n_kv_heads * self.head_dim, c.mode)
        self.wv = BitLinear(c.dim, c.n_kv_heads * self.head_dim, c.mode)
        self.wo = BitLinear(c.n_heads * self.head_dim, c.dim, c.mode)
        self.dropout = c.dropout

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k = self.wk(x).view(B, T, self.n_kv, self.head_dim)
        v = self.wv(x).view(B, T, self.n_kv, self.head_dim)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = self.n_heads // self.n_kv
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.w1 = BitLinear(c.dim, c.hidden_dim, c.mode)  # gate
        self.w2 = BitLinear(c.hidden_dim, c.dim, c.mode)  # down
        self.w3 = BitLinear(c.dim, c.hidden_dim, c.mode)  # up

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.attention_norm = RMSNorm(c.dim, c.norm_eps)
        self.attention = Attention(c)
        self.ffn_norm = RMSNorm(c.dim, c.norm_eps)
        self.feed_forward = FeedForward(c)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, cos, sin):
        x = x + self.drop(self.attention(self.attention_norm(x), cos, sin))
        return x + self.drop(self.feed_forward(self.ffn_norm(x)))


class Transformer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.config = c
        self.tok_embeddings = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = RMSNorm(c.dim, c.norm_eps)
        cos, sin = rope_tables(c.dim // c.n_heads, c.seq_len)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("wo.weight") or name.endswith("w2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def set_mode(self, mode: str) -> None:
        self.config.mode = mode
        for m in self.modules():
            if isinstance(m, BitLinear):
                m.mode = mode

    def forward(self, tokens, targets=None):
        T = tokens.shape[1]
        h = self.tok_embeddings(tokens)
        for layer in self.layers:
            h = layer(h, self.cos[:T], self.sin[:T])
        logits = F.linear(self.norm(h), self.tok_embeddings.weight)  # shared classifier
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))

    def block_linears(self):
        """(name, BitLinear) of every linear inside the blocks, in llama2.c's export order per kind."""
        for kind in ("wq", "wk", "wv", "wo"):
            for i, layer in enumerate(self.layers):
                yield f"layers.{i}.attention.{kind}", getattr(layer.attention, kind)
        for kind in ("w1", "w2", "w3"):
            for i, layer in enumerate(self.layers):
                yield f"layers.{i}.feed_forward.{kind}", getattr(layer.feed_forward, kind)
