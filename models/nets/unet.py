"""A compact conditional U-Net score model for SRDG (VE-SDE), with EDM-style preconditioning.

Contract (spec/SRDG.md section 4): forward(x_t [B,3,128,128], y [B,3,128,128], sigma [B])
-> score [B,3,128,128], an estimate of grad_x log p(x_t | y), already divided by sigma.

Parametrisation (Karras et al. 2022, "EDM", applied to the residual against y):
    r_t = x_t - y                      the noisy residual; r_0 = x_0 - y has std sigma_data
    c_in   = 1 / sqrt(sigma^2 + sd^2)
    c_skip = sd^2 / (sigma^2 + sd^2)
    c_out  = sigma * sd / sqrt(sigma^2 + sd^2)
    c_noise = log(sigma)               (Gaussian Fourier features -> MLP)
    D(x_t, y, sigma) = y + c_skip * r_t + c_out * F(c_in * r_t, 2y - 1, c_noise)
    score = (D - x_t) / sigma^2
          = -r_t / (sigma^2 + sd^2) + sd * F / (sigma * sqrt(sigma^2 + sd^2))   (computed so)
Because x_t = x_0 + sigma z, r_t = r_0 + sigma z: denoising the residual is the same problem,
and the SRDG DSM loss 0.5 * ||sigma * score + z||^2 equals 0.5 * ||D - x_0||^2 / sigma^2, so
training this network with that loss is exactly the DSM objective of spec section 3. At large
sigma D falls back to y (the LR evidence), at small sigma to x_t; F only has to learn the
unit-variance correction, which is what makes small networks train fast.

F is a U-Net: optional space-to-depth ("patch" 2: 6x128x128 -> 24x64x64, and depth-to-space
at the end, a 4x cut in cost at full resolution), conv in, per level `blocks` residual
blocks (GroupNorm, SiLU, conv3x3, + time embedding, GroupNorm, SiLU, dropout, conv3x3,
skip scaled by 1/sqrt(2)), stride-2 conv downsampling, a middle block with self-attention
(optional, lowest resolution), mirrored up path with skip concatenation and nearest-neighbour
upsampling + conv, GroupNorm, SiLU, zero-initialised conv out. Every op exports to ONNX opset 17.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as Fn

DEFAULTS = {
    "ch": 32,               # base width
    "ch_mult": [1, 2, 2, 4],  # width multipliers per level
    "blocks": 1,            # residual blocks per level (down path; up path has blocks + 1)
    "attn": True,           # self-attention in the middle block (lowest resolution)
    "patch": 2,             # space-to-depth factor at the input (1 or 2)
    "emb": 128,             # time-embedding width
    "fourier_scale": 1.0,   # std of the Fourier frequencies on log(sigma)
    "dropout": 0.0,
    "sigma_data": 0.1,      # std of the residual x_0 - y (measured on train, set by the trainer)
    "groups": 8,            # GroupNorm groups (capped by the channel count)
}


def make_config(**overrides):
    cfg = dict(DEFAULTS)
    for k, v in overrides.items():
        if k not in DEFAULTS:
            raise ValueError(f"unknown U-Net option {k!r} (known: {', '.join(DEFAULTS)})")
        if v is not None:
            cfg[k] = v
    cfg["ch_mult"] = [int(m) for m in cfg["ch_mult"]]
    if cfg["patch"] not in (1, 2):
        raise ValueError(f"patch must be 1 or 2, got {cfg['patch']}")
    return cfg


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 (under bf16 autocast its input arrives as bf16)."""

    def forward(self, x):
        return super().forward(x.float())


def _gn(ch, groups):
    g = min(groups, ch)
    while ch % g:
        g -= 1
    return GroupNorm32(g, ch, eps=1e-6)


class FourierEmbedding(nn.Module):
    def __init__(self, dim, scale):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        self.register_buffer("freqs", torch.randn(dim // 2, generator=g) * scale)

    def forward(self, x):
        a = x[:, None] * (2 * math.pi) * self.freqs[None, :]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, groups, dropout):
        super().__init__()
        self.norm1 = _gn(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(emb, cout)
        self.norm2 = _gn(cout, groups)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(Fn.silu(self.norm1(x)))
        h = h + self.temb(emb)[:, :, None, None]
        h = self.conv2(self.drop(Fn.silu(self.norm2(h))))
        return (self.skip(x) + h) * (1.0 / math.sqrt(2.0))


class Attention(nn.Module):
    def __init__(self, ch, groups):
        super().__init__()
        self.norm = _gn(ch, groups)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(-1, 3, c, h * w).unbind(1)
        a = torch.softmax(torch.bmm(q.transpose(1, 2), k) * (c ** -0.5), dim=-1)  # [B, hw, hw]
        o = torch.bmm(v, a.transpose(1, 2)).reshape(-1, c, h, w)
        return (x + self.proj(o)) * (1.0 / math.sqrt(2.0))


def space_to_depth(x, p):
    b, c, h, w = x.shape
    x = x.reshape(-1, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(-1, c * p * p, h // p, w // p)


def depth_to_space(x, p):
    b, c, h, w = x.shape
    x = x.reshape(-1, c // (p * p), p, p, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(-1, c // (p * p), h * p, w * p)


class UNetF(nn.Module):
    """The raw network F(c_in * r_t, 2y - 1, c_noise)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        ch, mult, nb, g, emb, p = cfg["ch"], cfg["ch_mult"], cfg["blocks"], cfg["groups"], cfg["emb"], cfg["patch"]
        self.fourier = FourierEmbedding(emb, cfg["fourier_scale"])
        self.emb1 = nn.Linear(emb, emb)
        self.emb2 = nn.Linear(emb, emb)
        self.conv_in = nn.Conv2d(6 * p * p, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [ch]
        cur = ch
        for lvl, m in enumerate(mult):
            for _ in range(nb):
                self.down.append(ResBlock(cur, ch * m, emb, g, cfg["dropout"]))
                cur = ch * m
                skips.append(cur)
            if lvl != len(mult) - 1:
                self.down.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))
                skips.append(cur)
        self.mid1 = ResBlock(cur, cur, emb, g, cfg["dropout"])
        self.mid_attn = Attention(cur, g) if cfg["attn"] else None
        self.mid2 = ResBlock(cur, cur, emb, g, cfg["dropout"])
        self.up = nn.ModuleList()
        for lvl in reversed(range(len(mult))):
            for _ in range(nb + 1):
                self.up.append(ResBlock(cur + skips.pop(), ch * mult[lvl], emb, g, cfg["dropout"]))
                cur = ch * mult[lvl]
            if lvl != 0:
                self.up.append(nn.Conv2d(cur, cur, 3, padding=1))  # after nearest x2
        assert not skips
        self.norm_out = _gn(cur, g)
        self.conv_out = nn.Conv2d(cur, 3 * p * p, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, h, c_noise):
        p = self.cfg["patch"]
        emb = self.emb2(Fn.silu(self.emb1(self.fourier(c_noise))))
        if p > 1:
            h = space_to_depth(h, p)
        h = self.conv_in(h)
        hs = [h]
        for mod in self.down:
            h = mod(h, emb) if isinstance(mod, ResBlock) else mod(h)
            hs.append(h)
        h = self.mid1(h, emb)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        h = self.mid2(h, emb)
        for mod in self.up:
            if isinstance(mod, ResBlock):
                h = mod(torch.cat([h, hs.pop()], dim=1), emb)
            else:
                h = mod(Fn.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.conv_out(Fn.silu(self.norm_out(h)))
        if p > 1:
            h = depth_to_space(h, p)
        return h


class ScoreModel(nn.Module):
    """EDM-preconditioned conditional score model: forward(x_t, y, sigma) -> score."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = make_config(**cfg)
        self.net = UNetF(self.cfg)

    def _parts(self, x_t, y, sigma):
        sd = self.cfg["sigma_data"]
        s = sigma.reshape(-1, 1, 1, 1)
        r = x_t - y
        q = torch.sqrt(s * s + sd * sd)
        f = self.net(torch.cat([r / q, 2.0 * y - 1.0], dim=1), torch.log(sigma))
        return s, r, q, f, sd

    def forward(self, x_t, y, sigma):
        s, r, q, f, sd = self._parts(x_t, y, sigma)
        return -r / (q * q) + f * (sd / (s * q))

    def denoise(self, x_t, y, sigma):
        """D(x_t, y, sigma): the estimate of x_0."""
        s, r, q, f, sd = self._parts(x_t, y, sigma)
        return y + r * (sd * sd / (q * q)) + f * (s * sd / q)


def param_count(model):
    return sum(p.numel() for p in model.parameters())
