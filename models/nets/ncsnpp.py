"""NCSN++ score network (the SDE-SR / sr-sde variant), written for srdgd.

A PyTorch module whose state_dict keys and shapes are those of the network that
marcelowds/sr-sde trains (score_sde's NCSN++ with the configuration in
configs/ve/sr_ve.py), so that an sr-sde checkpoint loads into it with strict key
and shape checking. Only the configuration used by sr-sde is implemented:

  BigGAN residual blocks with FIR [1,3,3,1] resampling, skip_rescale, attention
  at the listed resolutions ("ddpm" attention), progressive input "input_skip"
  with "sum" combine, no progressive output, Gaussian Fourier embedding of
  log(sigma), output divided by sigma, GroupNorm(min(C//4, 32), eps=1e-6),
  SiLU everywhere.

The FIR resampling is written as fixed depthwise convolutions (kernel
outer([1,3,3,1])/64): down = conv stride 2, pad 1; up = transposed conv stride 2,
pad 1 with 4x the kernel (identical to zero-insertion, pad (2,1), conv).

Module layout (all_modules[i]): 0 Fourier projection, 1-2 time MLP, 3 input conv,
then the down path (per level: num_res_blocks ResBlocks each followed by an
attention block at attention resolutions; between levels a down ResBlock and a
Combine of the FIR-downsampled input pyramid), the middle (ResBlock, attention,
ResBlock), the up path (per level: num_res_blocks+1 ResBlocks on cat([h, skip]),
attention at attention resolutions, an up ResBlock between levels), and the head
(GroupNorm, 3x3 conv).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

FIR_TAPS = (1.0, 3.0, 3.0, 1.0)


@dataclass
class Config:
    nf: int = 128
    ch_mult: tuple = (1, 1, 2, 2, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple = (16,)
    image_size: int = 128
    in_channels: int = 6    # interleaved [x_R, y_R, x_G, y_G, x_B, y_B]
    out_channels: int = 3

    def as_dict(self):
        return {"nf": self.nf, "ch_mult": list(self.ch_mult), "num_res_blocks": self.num_res_blocks,
                "attn_resolutions": list(self.attn_resolutions), "image_size": self.image_size,
                "in_channels": self.in_channels, "out_channels": self.out_channels}


def group_norm(channels):
    return nn.GroupNorm(min(channels // 4, 32), channels, eps=1e-6)


def fir_kernel_2d(dtype=torch.float32):
    k = torch.tensor(FIR_TAPS, dtype=torch.float64)
    k2 = torch.outer(k, k)
    return (k2 / k2.sum()).to(dtype)


class FIRDown(nn.Module):
    """Depthwise FIR downsample by 2: pad 1 each side, kernel k/64, stride 2."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.register_buffer("kernel", fir_kernel_2d()[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2, padding=1, groups=self.channels)


class FIRUp(nn.Module):
    """Depthwise FIR upsample by 2: zero-insert, pad (2,1), kernel 4k/64 == conv_transpose stride 2 pad 1."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        k = fir_kernel_2d() * 4.0
        self.register_buffer("kernel", k[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x):
        return F.conv_transpose2d(x, self.kernel.to(x.dtype), stride=2, padding=1, groups=self.channels)


class FourierFeatures(nn.Module):
    """[sin(2 pi t W), cos(2 pi t W)] of a scalar t per item (here t = log sigma)."""

    def __init__(self, size, scale=16.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(size) * scale, requires_grad=False)

    def forward(self, t):
        p = t[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(p), torch.cos(p)], dim=1)


class NIN(nn.Module):
    """Per-pixel linear map with W stored [in, out] (transposed vs a 1x1 conv)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(cin, cout))
        self.b = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        # x [B, C, N] -> [B, O, N]
        return torch.matmul(self.W.t(), x) + self.b[None, :, None]


class Attention(nn.Module):
    """Single-head self-attention over all positions, residual (x + h) / sqrt(2)."""

    def __init__(self, channels):
        super().__init__()
        self.GroupNorm_0 = group_norm(channels)
        self.NIN_0 = NIN(channels, channels)
        self.NIN_1 = NIN(channels, channels)
        self.NIN_2 = NIN(channels, channels)
        self.NIN_3 = NIN(channels, channels)

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.GroupNorm_0(x).flatten(2)                  # [B, C, N]
        q, k, v = self.NIN_0(h), self.NIN_1(h), self.NIN_2(h)
        w = torch.matmul(q.transpose(1, 2), k) * (c ** -0.5)  # [B, Nq, Nk]
        w = torch.softmax(w, dim=-1)
        h = torch.matmul(v, w.transpose(1, 2))               # [B, C, Nq]
        h = self.NIN_3(h).reshape(x.shape)
        return (x + h) / math.sqrt(2.0)


class ResBlock(nn.Module):
    """BigGAN-style residual block with optional FIR up/down, time conditioning and skip rescale."""

    def __init__(self, cin, cout, temb_dim, up=False, down=False):
        super().__init__()
        self.up, self.down = up, down
        self.GroupNorm_0 = group_norm(cin)
        self.Conv_0 = nn.Conv2d(cin, cout, 3, padding=1)
        self.Dense_0 = nn.Linear(temb_dim, cout)
        self.GroupNorm_1 = group_norm(cout)
        self.Conv_1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.has_skip_conv = cin != cout or up or down
        if self.has_skip_conv:
            self.Conv_2 = nn.Conv2d(cin, cout, 1)
        if up:
            self.resample = FIRUp(cin)
        elif down:
            self.resample = FIRDown(cin)

    def forward(self, x, temb):
        h = F.silu(self.GroupNorm_0(x))
        if self.up or self.down:
            h = self.resample(h)
            x = self.resample(x)
        h = self.Conv_0(h)
        h = h + self.Dense_0(F.silu(temb))[:, :, None, None]
        h = F.silu(self.GroupNorm_1(h))
        h = self.Conv_1(h)
        if self.has_skip_conv:
            x = self.Conv_2(x)
        return (x + h) / math.sqrt(2.0)


class Combine(nn.Module):
    """Input-skip combine, method sum: Conv1x1(pyramid) + h."""

    def __init__(self, cin, cout):
        super().__init__()
        self.Conv_0 = nn.Conv2d(cin, cout, 1)

    def forward(self, pyramid, h):
        return self.Conv_0(pyramid) + h


class NCSNpp(nn.Module):
    """The network: forward(v, sigma) with v the 6 interleaved channels in [0,1] data units.

    Returns the score (already divided by sigma), [B, out_channels, H, W].
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        nf = cfg.nf
        temb_dim = 4 * nf
        mods = [FourierFeatures(nf), nn.Linear(2 * nf, temb_dim), nn.Linear(temb_dim, temb_dim),
                nn.Conv2d(cfg.in_channels, nf, 3, padding=1)]
        # plan: a list of (op, index) the forward walks; ops: res, attn, down, combine, mid..., upres, up
        plan = []
        nlev = len(cfg.ch_mult)
        skip_ch = [nf]
        ch = nf
        res = cfg.image_size

        def add(m, op):
            plan.append((op, len(mods)))
            mods.append(m)

        for lev in range(nlev):
            for _ in range(cfg.num_res_blocks):
                out = nf * cfg.ch_mult[lev]
                add(ResBlock(ch, out, temb_dim), "res")
                ch = out
                if res in cfg.attn_resolutions:
                    add(Attention(ch), "attn")
                plan.append(("push", None))
                skip_ch.append(ch)
            if lev != nlev - 1:
                add(ResBlock(ch, ch, temb_dim, down=True), "res")
                add(Combine(cfg.in_channels, ch), "combine")
                plan.append(("push", None))
                res //= 2
                skip_ch.append(ch)
        add(ResBlock(ch, ch, temb_dim), "res")
        add(Attention(ch), "attn")
        add(ResBlock(ch, ch, temb_dim), "res")
        for lev in reversed(range(nlev)):
            for _ in range(cfg.num_res_blocks + 1):
                out = nf * cfg.ch_mult[lev]
                add(ResBlock(ch + skip_ch.pop(), out, temb_dim), "res_skip")
                ch = out
            if res in cfg.attn_resolutions:
                add(Attention(ch), "attn")
            if lev != 0:
                add(ResBlock(ch, ch, temb_dim, up=True), "res")
                res *= 2
        if skip_ch:
            raise ValueError("internal: unbalanced skip connections")
        self.head_norm_index = len(mods)
        mods.append(group_norm(ch))
        mods.append(nn.Conv2d(ch, cfg.out_channels, 3, padding=1))
        self.all_modules = nn.ModuleList(mods)
        self.plan = plan
        self.pyramid_down = FIRDown(cfg.in_channels)

    def embed(self, sigma):
        """Time embedding (Dense_2(SiLU(Dense_1(fourier(log sigma))))) and the Fourier features."""
        m = self.all_modules
        four = m[0](torch.log(sigma))
        temb = m[2](F.silu(m[1](four)))
        return temb, four

    def forward(self, v, sigma):
        m = self.all_modules
        temb, _ = self.embed(sigma)
        v = 2 * v - 1
        pyramid = v
        h = m[3](v)
        hs = [h]
        for op, i in self.plan:
            if op == "res":
                h = m[i](h, temb)
            elif op == "attn":
                h = m[i](h)
            elif op == "push":
                hs.append(h)
            elif op == "combine":
                pyramid = self.pyramid_down(pyramid)
                h = m[i](pyramid, h)
            elif op == "res_skip":
                h = m[i](torch.cat([h, hs.pop()], dim=1), temb)
        h = F.silu(m[self.head_norm_index](h))
        h = m[self.head_norm_index + 1](h)
        return h / sigma.reshape(-1, 1, 1, 1)


def interleave(x_t, y):
    """[B,3,H,W] x2 -> [B,6,H,W] as [x_R, y_R, x_G, y_G, x_B, y_B]."""
    return torch.stack([x_t, y], dim=2).flatten(1, 2)


class ScoreModel(nn.Module):
    """The srdgd score contract: (x_t, y, sigma) -> score, wrapping NCSNpp."""

    def __init__(self, net: NCSNpp):
        super().__init__()
        self.net = net

    def forward(self, x_t, y, sigma):
        return self.net(interleave(x_t, y), sigma)


# --- configuration inference from a state dict -------------------------------------------------

def infer_config(sd, image_size=128):
    """Infer nf, ch_mult, num_res_blocks and attn_resolutions from state_dict shapes.

    sd: keys without the 'module.' prefix ('all_modules.<i>.<...>').
    """
    mods = {}
    for k, t in sd.items():
        parts = k.split(".")
        if len(parts) < 3 or parts[0] != "all_modules":
            continue
        mods.setdefault(int(parts[1]), {})[".".join(parts[2:])] = tuple(t.shape)
    if 0 not in mods or "W" not in mods[0]:
        raise ValueError("no all_modules.0.W (Gaussian Fourier projection): not an NCSN++ state dict")
    nf = mods[0]["W"][0]
    if 3 not in mods or "weight" not in mods[3]:
        raise ValueError("no all_modules.3.weight (input conv)")
    in_ch = mods[3]["weight"][1]

    def kind(i):
        p = mods.get(i, {})
        if "NIN_0.W" in p:
            return "attn"
        if "GroupNorm_0.weight" in p:
            return "res"
        if "Conv_0.weight" in p and len(p) == 2:
            return "combine"
        return "other"

    n = max(mods) + 1
    kinds = [kind(i) for i in range(4, n)]
    n_comb = kinds.count("combine")
    nlev = n_comb + 1
    first_comb = kinds.index("combine") if n_comb else None
    if first_comb is None:
        raise ValueError("no input-skip Combine modules found")
    before = kinds[:first_comb]
    n_res0 = before.count("res")
    num_res_blocks = n_res0 - 1
    # walk the down path to get per-level channels and attention
    ch_mult, attn_res = [], set()
    i = 0
    res = image_size
    for lev in range(nlev):
        out = None
        for _ in range(num_res_blocks):
            if kinds[i] != "res":
                raise ValueError(f"unexpected module layout at all_modules.{i + 4}")
            out = mods[i + 4]["Conv_0.weight"][0]
            i += 1
            if i < len(kinds) and kinds[i] == "attn":
                attn_res.add(res)
                i += 1
        ch_mult.append(out // nf)
        if lev != nlev - 1:
            i += 2  # down ResBlock, Combine
            res //= 2
    return Config(nf=nf, ch_mult=tuple(ch_mult), num_res_blocks=num_res_blocks,
                  attn_resolutions=tuple(sorted(attn_res)), image_size=image_size,
                  in_channels=in_ch, out_channels=mods[n - 1]["weight"][0])


def count_params(module):
    return sum(p.numel() for p in module.parameters())
