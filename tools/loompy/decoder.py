"""The MoE decoder in PyTorch: the twin of lib/core/decoder.c (llama.cpp's `deepseek2`).

    x = token_embd[ids] (or media embeddings)
    per layer: x += MLA(RMSNorm(x)); x += FFN(RMSNorm(x))   (dense SwiGLU or routed + shared experts)
    logits = output · RMSNorm(x)

Attention runs in the plain form (k_nope = k_b·c, v = v_b·c from the latent c per head),
which is mathematically the absorbed form loom's C code runs. RoPE is ggml's NORM mode
(adjacent pairs). Routing is DeepSeek-V3's: sigmoid scores, a selection-only bias
(`exp_probs_b`, trained without gradients: aux-loss-free balancing), top-k, weights
normalised over the selected.

export_gguf() writes the split-MLA layout (load_gguf() reads it back) (attn_k_b / attn_v_b) with the same names and
shapes llama.cpp uses (docs/FORMAT.md "Decoder").
"""
import math
from dataclasses import dataclass, asdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tools.loompy import gguf


@dataclass
class DecoderConfig:
    n_vocab: int = 3690
    n_embd: int = 256
    n_layer: int = 4
    n_dense_lead: int = 1       # leading layers with a dense SwiGLU FFN
    n_head: int = 4
    kv_lora: int = 64           # latent width
    n_nope: int = 32            # per-head q/k dims without RoPE
    n_rope: int = 16            # per-head q/k dims with RoPE (k_pe shared by all heads)
    n_v: int = 32               # per-head value dims
    n_ff: int = 768             # dense FFN width
    n_ff_exp: int = 192         # per routed expert (and per shared expert)
    n_expert: int = 8
    n_expert_used: int = 2
    n_expert_shared: int = 1
    weights_scale: float = 1.0
    rms_eps: float = 1e-6
    rope_base: float = 10000.0
    n_ctx: int = 1024
    tied: bool = False          # output head reuses token_embd


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, pos, base):
    """ggml NORM rope over the last dim (adjacent pairs). x [..., T, n], pos [T]."""
    n = x.shape[-1]
    inv = base ** (-torch.arange(0, n, 2, dtype=torch.float64, device=x.device) / n)
    ang = (pos.to(torch.float64)[:, None] * inv[None, :]).to(torch.float32)  # [T, n/2]
    cos, sin = ang.cos(), ang.sin()
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class Layer(nn.Module):
    def __init__(self, c: DecoderConfig, moe: bool):
        super().__init__()
        E, H, dq = c.n_embd, c.n_head, c.n_nope + c.n_rope
        self.c, self.moe = c, moe
        self.drop = 0.0   # dropout on both residual branches while training (train.py --dropout); never exported
        self.attn_norm = nn.Parameter(torch.ones(E))
        self.wq = nn.Parameter(torch.empty(H * dq, E))                 # attn_q
        self.wkv_a = nn.Parameter(torch.empty(c.kv_lora + c.n_rope, E)) # attn_kv_a_mqa
        self.kv_a_norm = nn.Parameter(torch.ones(c.kv_lora))
        self.k_b = nn.Parameter(torch.empty(H, c.kv_lora, c.n_nope))    # attn_k_b  {nope, kv_lora, H}
        self.v_b = nn.Parameter(torch.empty(H, c.n_v, c.kv_lora))       # attn_v_b  {kv_lora, v, H}
        self.wo = nn.Parameter(torch.empty(E, H * c.n_v))               # attn_output
        self.ffn_norm = nn.Parameter(torch.ones(E))
        if moe:
            X, f = c.n_expert, c.n_ff_exp
            self.gate_inp = nn.Parameter(torch.empty(X, E))
            self.register_buffer("exp_probs_b", torch.zeros(X))
            self.gate_exps = nn.Parameter(torch.empty(X, f, E))
            self.up_exps = nn.Parameter(torch.empty(X, f, E))
            self.down_exps = nn.Parameter(torch.empty(X, E, f))
            fs = f * c.n_expert_shared
            self.gate_shexp = nn.Parameter(torch.empty(fs, E))
            self.up_shexp = nn.Parameter(torch.empty(fs, E))
            self.down_shexp = nn.Parameter(torch.empty(E, fs))
            self.load = None            # [X] fraction of routed slots per expert, last forward
            self.route_gap = float("inf")  # smallest gap between the k-th and next expert score, last forward
        else:
            self.ffn_gate = nn.Parameter(torch.empty(c.n_ff, E))
            self.ffn_up = nn.Parameter(torch.empty(c.n_ff, E))
            self.ffn_down = nn.Parameter(torch.empty(E, c.n_ff))

    def attention(self, x, pos, mask, cache=None):
        """cache: None, or a dict holding this layer's latent cache {"lat", "k_pe"} that the
        new positions are appended to (the C engine's cache: one row per position)."""
        c = self.c
        B, T, _ = x.shape
        H, dq = c.n_head, c.n_nope + c.n_rope
        q = F.linear(x, self.wq).view(B, T, H, dq).transpose(1, 2)         # [B,H,T,dq]
        q_nope, q_pe = q[..., :c.n_nope], rope(q[..., c.n_nope:], pos, c.rope_base)
        kva = F.linear(x, self.wkv_a)
        lat = rms_norm(kva[..., :c.kv_lora], self.kv_a_norm, c.rms_eps)   # [B,T,kvl]
        k_pe = rope(kva[..., c.kv_lora:], pos, c.rope_base)                # [B,T,rope]
        if cache is not None:
            if "lat" in cache:
                lat = torch.cat([cache["lat"], lat], 1)
                k_pe = torch.cat([cache["k_pe"], k_pe], 1)
            cache["lat"], cache["k_pe"] = lat, k_pe
        if T == 1:   # a decode step: absorb k_b / v_b into the query and output, as the C engine
            # does, instead of expanding every cached position's keys and values
            q_lat = torch.einsum("bhtn,hcn->bhtc", q_nope, self.k_b)         # [B,H,1,kvl]
            s = q_lat @ lat[:, None].transpose(-1, -2) + q_pe @ k_pe[:, None].transpose(-1, -2)
            o_lat = torch.softmax(s / math.sqrt(dq) + mask, dim=-1) @ lat[:, None]
            o = torch.einsum("bhtc,hvc->bhtv", o_lat, self.v_b)             # [B,H,1,v]
        else:
            k_nope = torch.einsum("btc,hcn->bhtn", lat, self.k_b)
            v = torch.einsum("btc,hvc->bhtv", lat, self.v_b)
            s = (q_nope @ k_nope.transpose(-1, -2) + q_pe @ k_pe[:, None].transpose(-1, -2))
            s = s / math.sqrt(dq) + mask
            o = torch.softmax(s, dim=-1) @ v                                 # [B,H,T,v]
        return F.linear(o.transpose(1, 2).reshape(B, T, H * c.n_v), self.wo)

    def route(self, x):
        """x [N,E] → experts [N,k], weights [N,k] (sigmoid, bias steers selection only)."""
        c = self.c
        probs = torch.sigmoid(F.linear(x, self.gate_inp))
        score = probs.detach() + self.exp_probs_b
        sel = torch.topk(score, c.n_expert_used, dim=-1).indices
        if c.n_expert > c.n_expert_used:   # how near this call's selection was to another expert set
            top = torch.topk(score.float(), c.n_expert_used + 1, dim=-1).values
            self.route_gap = float((top[:, -2] - top[:, -1]).min())
        w = probs.gather(-1, sel)
        w = w / w.sum(-1, keepdim=True).clamp_min(6.103515625e-5)
        if c.weights_scale not in (0.0, 1.0):
            w = w * c.weights_scale
        return sel, w

    def ffn(self, x):
        if not self.moe:
            return F.linear(F.silu(F.linear(x, self.ffn_gate)) * F.linear(x, self.ffn_up), self.ffn_down)
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        sel, w = self.route(x)
        out = F.linear(F.silu(F.linear(x, self.gate_shexp)) * F.linear(x, self.up_shexp), self.down_shexp)
        counts = torch.bincount(sel.flatten(), minlength=self.c.n_expert)
        self.load = counts.float() / sel.numel()
        for e in torch.nonzero(counts).flatten().tolist():
            tok, slot = torch.nonzero(sel == e, as_tuple=True)
            xe = x[tok]
            ye = F.linear(F.silu(F.linear(xe, self.gate_exps[e])) * F.linear(xe, self.up_exps[e]), self.down_exps[e])
            out = out.index_add(0, tok, (ye * w[tok, slot, None]).to(out.dtype))
        return out.view(shape)

    def forward(self, x, pos, mask, cache=None):
        c = self.c
        x = x + F.dropout(self.attention(rms_norm(x, self.attn_norm, c.rms_eps), pos, mask, cache), self.drop, self.training)
        return x + F.dropout(self.ffn(rms_norm(x, self.ffn_norm, c.rms_eps)), self.drop, self.training)


class Decoder(nn.Module):
    def __init__(self, c: DecoderConfig):
        super().__init__()
        self.c = c
        self.token_embd = nn.Parameter(torch.empty(c.n_vocab, c.n_embd))
        self.layers = nn.ModuleList(Layer(c, i >= c.n_dense_lead) for i in range(c.n_layer))
        self.output_norm = nn.Parameter(torch.ones(c.n_embd))
        self.output = None if c.tied else nn.Parameter(torch.empty(c.n_vocab, c.n_embd))
        self.init_weights()

    def init_weights(self, seed=None, std=0.02):
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 1:
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, std, generator=g)
        return self

    def embed(self, ids):
        return self.token_embd[ids]

    def forward(self, x, pos=None, cache=None, rows=None):
        """x: [B,T,E] input embeddings → logits [B,T,V] (causal). With `cache` (a list that
        starts empty), x continues the cached positions and is added to the cache. With `rows`
        (bool [B,T]) only those positions' logits, [N,V]: training needs only the answer's."""
        T = x.shape[1]
        if cache is not None and not cache:
            cache.extend({} for _ in self.layers)
        past = cache[0]["lat"].shape[1] if cache and "lat" in cache[0] else 0
        if pos is None:
            pos = torch.arange(past, past + T, device=x.device)
        mask = torch.full((T, past + T), float("-inf"), device=x.device).triu(past + 1)
        for i, L in enumerate(self.layers):
            x = L(x, pos, mask, cache[i] if cache is not None else None)
        h = rms_norm(x if rows is None else x[rows], self.output_norm, self.c.rms_eps)
        return F.linear(h, self.token_embd if self.output is None else self.output)

    @torch.no_grad()
    def update_bias(self, rate=1e-3):
        """DeepSeek-V3's aux-loss-free balancing: raise the bias of under-loaded experts."""
        for L in self.layers:
            if L.moe and L.load is not None:
                L.exp_probs_b += rate * torch.sign(L.load.mean() - L.load)


# --- GGUF -----------------------------------------------------------------------------
def export_gguf(model: Decoder, w: gguf.Writer, ttype=gguf.T_F16):
    """Add the deepseek2 keys and tensors of `model` to writer `w` (the caller adds the
    tokenizer keys). Matrices use `ttype`; norms and the bias stay F32. The model's weights
    are rounded in place to what the file holds, so a reference run sees what loom loads."""
    c = model.c
    A = "deepseek2."
    w.add_str("general.architecture", "deepseek2")
    w.add_u32(A + "block_count", c.n_layer)
    w.add_u32(A + "context_length", c.n_ctx)
    w.add_u32(A + "embedding_length", c.n_embd)
    w.add_u32(A + "feed_forward_length", c.n_ff)
    w.add_u32(A + "attention.head_count", c.n_head)
    w.add_u32(A + "attention.head_count_kv", 1)
    w.add_f32(A + "attention.layer_norm_rms_epsilon", c.rms_eps)
    w.add_u32(A + "leading_dense_block_count", c.n_dense_lead)
    w.add_u32(A + "attention.q_lora_rank", 0)
    w.add_u32(A + "attention.kv_lora_rank", c.kv_lora)
    w.add_u32(A + "attention.key_length", c.kv_lora + c.n_rope)
    w.add_u32(A + "attention.value_length", c.kv_lora)
    w.add_u32(A + "attention.key_length_mla", c.n_nope + c.n_rope)
    w.add_u32(A + "attention.value_length_mla", c.n_v)
    w.add_u32(A + "rope.dimension_count", c.n_rope)
    w.add_f32(A + "rope.freq_base", c.rope_base)
    w.add_u32(A + "expert_feed_forward_length", c.n_ff_exp)
    w.add_u32(A + "expert_count", c.n_expert)
    w.add_u32(A + "expert_used_count", c.n_expert_used)
    w.add_u32(A + "expert_shared_count", c.n_expert_shared)
    w.add_f32(A + "expert_weights_scale", c.weights_scale)
    w.add_bool(A + "expert_weights_norm", True)
    w.add_u32(A + "expert_gating_func", 2)

    for name, t in tensors(model):
        arr = t.detach().float().numpy()
        typ = ttype if arr.ndim >= 2 else gguf.T_F32
        w.add_tensor(name, arr, typ)
        with torch.no_grad():
            if typ == gguf.T_F16:
                t.copy_(torch.from_numpy(arr.astype(np.float16).astype(np.float32)))
            elif typ == gguf.T_Q8_0:
                t.copy_(torch.from_numpy(gguf.dequantize_q8_0(gguf.quantize_q8_0(arr), arr.size).reshape(arr.shape)))


def tensors(model: Decoder):
    """(gguf name, tensor of `model`) in file order: what export_gguf writes and load_gguf reads."""
    out = [("token_embd.weight", model.token_embd), ("output_norm.weight", model.output_norm)]
    if model.output is not None:
        out.append(("output.weight", model.output))
    for i, L in enumerate(model.layers):
        names = ["attn_norm", "attn_q", "attn_kv_a_mqa", "attn_kv_a_norm", "attn_k_b", "attn_v_b", "attn_output",
                 "ffn_norm"]
        attrs = ["attn_norm", "wq", "wkv_a", "kv_a_norm", "k_b", "v_b", "wo", "ffn_norm"]
        if L.moe:
            names += ["ffn_gate_inp", "exp_probs_b", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps",
                      "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"]
            attrs += ["gate_inp", "exp_probs_b", "gate_exps", "up_exps", "down_exps", "gate_shexp", "up_shexp",
                      "down_shexp"]
        else:
            names += ["ffn_gate", "ffn_up", "ffn_down"]
            attrs += ["ffn_gate", "ffn_up", "ffn_down"]
        out += [(f"blk.{i}.{n}." + ("bias" if n == "exp_probs_b" else "weight"), getattr(L, a))
                for n, a in zip(names, attrs)]
    return out


def load_gguf(kv, tensors_read):
    """A Decoder from the keys and tensors of a deepseek2 file (gguf.read), as export_gguf wrote it."""
    A = "deepseek2."
    n_rope = kv[A + "rope.dimension_count"]
    c = DecoderConfig(n_vocab=tensors_read["token_embd.weight"][0][0], n_embd=kv[A + "embedding_length"],
                      n_layer=kv[A + "block_count"], n_dense_lead=kv[A + "leading_dense_block_count"],
                      n_head=kv[A + "attention.head_count"], kv_lora=kv[A + "attention.kv_lora_rank"],
                      n_nope=kv[A + "attention.key_length_mla"] - n_rope, n_rope=n_rope,
                      n_v=kv[A + "attention.value_length_mla"], n_ff=kv[A + "feed_forward_length"],
                      n_ff_exp=kv[A + "expert_feed_forward_length"], n_expert=kv[A + "expert_count"],
                      n_expert_used=kv[A + "expert_used_count"], n_expert_shared=kv[A + "expert_shared_count"],
                      weights_scale=kv[A + "expert_weights_scale"], rms_eps=kv[A + "attention.layer_norm_rms_epsilon"],
                      rope_base=kv[A + "rope.freq_base"], n_ctx=kv[A + "context_length"],
                      tied="output.weight" not in tensors_read)
    model = Decoder(c)
    with torch.no_grad():
        for name, t in tensors(model):
            t.copy_(torch.from_numpy(gguf.to_array(*tensors_read[name]).copy()))
    return model.eval()


def config_dict(c: DecoderConfig):
    return asdict(c)
