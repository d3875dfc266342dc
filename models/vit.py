"""A small Vision Transformer for small images, built from ``nn.Linear`` layers (so that
optimizers hooking Linear/Conv layers, like INSGD, see every projection's input)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.options import ModelOptionError, check_bool, check_float, check_int


def _norm(dim: int, norm: bool) -> nn.Module:
    return nn.LayerNorm(dim) if norm else nn.Identity()


class Attention(nn.Module):
    """Multi-head self-attention: ``qkv`` Linear, scaled dot-product attention, ``proj`` Linear."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, hidden: int, norm: bool) -> None:
        super().__init__()
        self.norm1 = _norm(dim, norm)
        self.attn = Attention(dim, heads)
        self.norm2 = _norm(dim, norm)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Vision Transformer: non-overlapping ``patch_size`` patches embedded by a strided conv,
    a class token, learned positional embeddings, ``depth`` pre-norm blocks, final norm and a
    Linear head on the class token.

    Images whose height or width is not a multiple of ``patch_size`` are zero-padded at the
    bottom/right up to the next multiple. The positional embedding (truncated normal, std
    0.02) and the class token (zeros) are plain parameters of this module: ``apply_init``
    leaves them as created.

    Args:
        in_shape: (C, H, W) of the input images.
        num_classes: number of outputs.
        patch_size: side of the square patches.
        depth: number of transformer blocks.
        dim: embedding width (a multiple of ``heads``).
        heads: attention heads.
        mlp_ratio: MLP hidden width / ``dim``.
        norm: LayerNorm layers on, or ``nn.Identity`` in their place.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        patch_size: int = 4,
        depth: int = 12,
        dim: int = 192,
        heads: int = 3,
        mlp_ratio: float = 4.0,
        norm: bool = True,
    ) -> None:
        super().__init__()
        channels, height, width = in_shape
        self.patch_size = patch_size
        self.pad_h = -height % patch_size
        self.pad_w = -width % patch_size
        num_patches = math.ceil(height / patch_size) * math.ceil(width / patch_size)
        self.patch_embed = nn.Conv2d(channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        hidden = max(1, round(dim * mlp_ratio))
        self.blocks = nn.Sequential(*(Block(dim, heads, hidden, norm) for _ in range(depth)))
        self.norm = _norm(dim, norm)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if self.pad_h or self.pad_w:
            x = F.pad(x, (0, self.pad_w, 0, self.pad_h))
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def build_vit_tiny(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    patch_size: int = 4,
    depth: int = 12,
    dim: int = 192,
    heads: int = 3,
    mlp_ratio: float = 4.0,
    norm: bool = True,
) -> ViT:
    """``vit_tiny``: ViT-Ti/DeiT-Tiny shape by default (``dim`` 192, ``depth`` 12, ``heads`` 3,
    ``mlp_ratio`` 4; 5.4M parameters) on 4×4 patches (``patch_size`` 4 divides 8, 28 and 32);
    ``norm: false`` removes the LayerNorms."""
    dim = check_int("vit_tiny", "dim", dim)
    heads = check_int("vit_tiny", "heads", heads)
    if dim % heads != 0:
        raise ModelOptionError("vit_tiny", "dim", f"a multiple of 'heads' ({heads})", dim)
    return ViT(
        in_shape,
        num_classes,
        patch_size=check_int("vit_tiny", "patch_size", patch_size),
        depth=check_int("vit_tiny", "depth", depth),
        dim=dim,
        heads=heads,
        mlp_ratio=check_float("vit_tiny", "mlp_ratio", mlp_ratio, low=1e-3, high=64.0),
        norm=check_bool("vit_tiny", "norm", norm),
    )
