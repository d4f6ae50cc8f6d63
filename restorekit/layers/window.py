"""Window self-attention and the post-LN Swin block with the DeepNorm residual.

Papers:
- Swin Transformer, Liu et al., ICCV 2021: https://arxiv.org/abs/2103.14030
- DeepNet / DeepNorm, Wang et al. 2022: https://arxiv.org/abs/2203.00555

CASR (SPEC.md section C) uses two of these blocks (W-MSA, then SW-MSA) with post-LayerNorm
and the DeepNorm residual ``LN(alpha * x + f(x))``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorekit.utils import check_positive

__all__ = [
    "SwinBlock",
    "WindowAttention",
    "deepnorm_constants",
    "deepnorm_init_",
    "window_attention_mask",
    "window_partition",
    "window_reverse",
]


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """Cut a channels-last map into non-overlapping square windows.

    Args:
        x: (B, H, W, C), H and W multiples of ``window_size``.
        window_size: side of a window.

    Returns:
        (B * nW, window_size, window_size, C), windows in row-major order per image,
        nW = (H / window_size) * (W / window_size).

    Example:
        >>> window_partition(torch.zeros(2, 8, 12, 3), 4).shape
        torch.Size([12, 4, 4, 3])
    """
    b, h, w, c = x.shape
    if h % window_size or w % window_size:
        raise ValueError(f"window_size={window_size} must divide the height {h} and width {w}")
    x = x.reshape(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)


def window_reverse(windows: Tensor, window_size: int, h: int, w: int) -> Tensor:
    """Inverse of `window_partition`: (B * nW, ws, ws, C) -> (B, H, W, C).

    Example:
        >>> x = torch.rand(2, 8, 12, 3)
        >>> torch.equal(window_reverse(window_partition(x, 4), 4, 8, 12), x)
        True
    """
    c = windows.shape[-1]
    x = windows.reshape(-1, h // window_size, w // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def window_attention_mask(
    height: int,
    width: int,
    window_size: int,
    shift_size: int,
    *,
    device: torch.device | None = None,
) -> Tensor:
    """Which tokens may attend to which, per window, for a (shifted) window partition.

    The map is padded at the bottom and right to multiples of ``window_size`` and then, for
    SW-MSA, rolled by ``-shift_size`` (as `SwinBlock` does). Every token gets a label:
    whether its row and its column wrapped around in the roll (the Swin paper's mask), and
    whether it is padding. A token attends only to tokens with the same label, so real
    pixels never see padding or pixels from the opposite edge, and padding sees only
    padding (every query keeps at least itself, so no softmax row is empty).

    Args:
        height, width: the unpadded size H, W.
        window_size: side of a window.
        shift_size: the roll; 0 for W-MSA.
        device: where to build the mask.

    Returns:
        Bool (nW, N, N), True where query i may attend to key j; N = window_size ** 2.

    Example:
        >>> m = window_attention_mask(4, 4, 4, 0)
        >>> m.shape, bool(m.all())
        (torch.Size([1, 16, 16]), True)
    """
    if window_size < 1 or not 0 <= shift_size < window_size:
        raise ValueError(
            f"need window_size >= 1 and 0 <= shift_size < window_size, "
            f"got window_size={window_size}, shift_size={shift_size}"
        )
    hp, wp = height + -height % window_size, width + -width % window_size
    rows, cols = torch.arange(hp, device=device), torch.arange(wp, device=device)
    padding = (rows[:, None] >= height) | (cols[None, :] >= width)
    padding = torch.roll(padding, (-shift_size, -shift_size), dims=(0, 1))
    # After the roll, the last `shift_size` rows / columns are the ones that wrapped around.
    wrapped_row, wrapped_col = (rows >= hp - shift_size).long(), (cols >= wp - shift_size).long()
    label = 4 * padding.long() + 2 * wrapped_row[:, None] + wrapped_col[None, :]
    label = window_partition(label[None, :, :, None], window_size).flatten(1)  # (nW, N)
    return label[:, :, None] == label[:, None, :]


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with Swin's relative position bias.

    Liu et al. 2021 (https://arxiv.org/abs/2103.14030). For each head, in each window::

        softmax(Q K^T / sqrt(d) + B + M) V

    B is a learned bias indexed by the relative offset of two tokens ((2ws-1)^2 entries
    per head) and M is -inf where the mask forbids attention. `forward` runs through
    ``torch.nn.functional.scaled_dot_product_attention``; `reference` writes it out, and
    `forward` takes that path when ``export_safe`` is set (ONNX export, whose translation
    of the fused kernel takes 4-D inputs only, these being 5-D).

    Args:
        dim: C, the token channels.
        window_size: side ws of the square windows (N = ws^2 tokens each).
        num_heads: heads; must divide ``dim``.
        qkv_bias: bias in the fused query/key/value projection.
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after the output projection.

    Shapes:
        x (B * nW, N, C), mask bool (nW, N, N) or None -> (B * nW, N, C).
    """

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        *,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim < 1 or num_heads < 1 or dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must be positive and divide dim={dim}")
        if window_size < 1:
            raise ValueError(f"window_size must be positive, got {window_size}")
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # Offsets (dy, dx) in [-(ws-1), ws-1] between every pair of tokens, as a table row.
        yx = torch.stack(torch.meshgrid(*[torch.arange(window_size)] * 2, indexing="ij"))
        offset = yx.flatten(1)[:, :, None] - yx.flatten(1)[:, None, :] + window_size - 1
        index = offset[0] * (2 * window_size - 1) + offset[1]
        self.register_buffer("relative_position_index", index, persistent=False)

    def _qkv(self, x: Tensor, n_windows: int) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys, values, each (B, nW, heads, N, d)."""
        b_, n, _ = x.shape
        qkv = self.qkv(x).view(b_ // n_windows, n_windows, n, 3, self.num_heads, -1)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)
        return q, k, v

    def _bias(self, mask: Tensor | None, dtype: torch.dtype) -> Tensor:
        """Relative position bias plus the -inf mask, (nW or 1, heads, N, N)."""
        n = self.relative_position_index.shape[0]
        bias = self.relative_position_bias_table[self.relative_position_index.flatten()]
        bias = bias.view(n, n, -1).permute(2, 0, 1).to(dtype)[None]
        if mask is None:
            return bias
        blocked = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
        return bias + blocked.masked_fill(~mask, float("-inf"))[:, None]

    def _merge(self, out: Tensor) -> Tensor:
        """(B, nW, heads, N, d) -> projected (B * nW, N, C)."""
        b, nw, _, n, _ = out.shape
        return self.proj_drop(self.proj(out.permute(0, 1, 3, 2, 4).reshape(b * nw, n, -1)))

    def _check(self, x: Tensor, mask: Tensor | None) -> int:
        n_windows = 1 if mask is None else mask.shape[0]
        if x.shape[0] % n_windows:
            raise ValueError(f"x has {x.shape[0]} windows, not a multiple of mask's {n_windows}")
        return n_windows

    export_safe: bool = False

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.export_safe:
            return self.reference(x, mask)
        q, k, v = self._qkv(x, self._check(x, mask))
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=self._bias(mask, q.dtype),
            dropout_p=self.attn_drop if self.training else 0.0,
        )
        return self._merge(out)

    def reference(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """`forward` written out as softmax(QK^T / sqrt(d) + bias + mask) V."""
        q, k, v = self._qkv(x, self._check(x, mask))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]) + self._bias(mask, q.dtype)
        weights = F.dropout(scores.softmax(dim=-1), self.attn_drop, self.training)
        return self._merge(weights @ v)


class SwinBlock(nn.Module):
    """A post-LayerNorm Swin Transformer block with the DeepNorm residual.

    Liu et al. 2021 (https://arxiv.org/abs/2103.14030) with the residual of Wang et al.
    2022 (https://arxiv.org/abs/2203.00555), as CASR uses it::

        x = LN(alpha * x + (S)W-MSA(x))
        x = LN(alpha * x + MLP(x))          # MLP: Linear -> GELU -> Dropout -> Linear -> Dropout

    With ``shift_size > 0`` the map is rolled by ``-shift_size`` before windowing and rolled
    back after (SW-MSA), and `window_attention_mask` stops attention across the roll's
    wrap-around. H and W need not be multiples of ``window_size``: the map is zero-padded at
    the bottom and right inside the block, padded tokens are masked out as keys (so the
    result at real pixels does not depend on the padding) and cropped away at the end.

    ``deepnorm_alpha`` is a buffer, so checkpoints carry it; CASR's fine-tuning stage sets
    it to 1 with ``block.deepnorm_alpha.fill_(1.0)``. Use `deepnorm_constants` for the
    value and `deepnorm_init_` for the matching initialisation.

    Args:
        dim: C, the channels.
        num_heads: attention heads; must divide ``dim``.
        window_size: window side.
        shift_size: 0 for W-MSA; ``window_size // 2`` for SW-MSA; must be < window_size.
        mlp_ratio: hidden width of the MLP relative to ``dim``.
        drop: dropout after the attention output projection and in the MLP.
        deepnorm_alpha: the residual scale alpha (1 gives the plain post-LN residual).

    Shapes:
        (B, C, H, W) -> (B, C, H, W); the block works channels-last internally.

    Example:
        >>> SwinBlock(12, 3, 4, 2)(torch.rand(1, 12, 5, 7)).shape
        torch.Size([1, 12, 5, 7])
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        *,
        mlp_ratio: float = 4.0,
        drop: float = 0.1,
        deepnorm_alpha: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, window_size), got {shift_size}")
        if mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be positive, got {mlp_ratio}")
        self.window_size = window_size
        self.shift_size = shift_size
        self.attn = WindowAttention(dim, window_size, num_heads, proj_drop=drop)
        self.norm1 = nn.LayerNorm(dim)
        hidden = max(1, int(dim * mlp_ratio))
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(drop),
            nn.Linear(hidden, dim),
            nn.Dropout(drop),
        )
        self.norm2 = nn.LayerNorm(dim)
        self.register_buffer("deepnorm_alpha", torch.tensor(float(deepnorm_alpha)))

    def forward(self, x: Tensor) -> Tensor:
        _, c, h, w = x.shape
        ws, shift = self.window_size, self.shift_size
        x = F.pad(x.permute(0, 2, 3, 1), (0, 0, 0, -w % ws, 0, -h % ws))  # (B, Hp, Wp, C)
        hp, wp = x.shape[1:3]
        mask = None  # without shift or padding every token may attend to its whole window
        if shift or hp != h or wp != w:
            mask = window_attention_mask(h, w, ws, shift, device=x.device)
        shifted = torch.roll(x, (-shift, -shift), dims=(1, 2)) if shift else x
        windows = window_partition(shifted, ws).reshape(-1, ws * ws, c)
        attn = window_reverse(self.attn(windows, mask).reshape(-1, ws, ws, c), ws, hp, wp)
        attn = torch.roll(attn, (shift, shift), dims=(1, 2)) if shift else attn
        x = self.norm1(self.deepnorm_alpha * x + attn)
        x = self.norm2(self.deepnorm_alpha * x + self.mlp(x))
        return x[:, :h, :w].permute(0, 3, 1, 2)


def deepnorm_constants(n_blocks: int) -> tuple[float, float]:
    """DeepNorm's residual scale and init gain for a stack of N blocks (CASR's reading).

    alpha = (2N)^(1/4) and beta = (8N)^(-1/4) (Wang et al. 2022, encoder-only case).

    Example:
        >>> deepnorm_constants(2)
        (1.4142135623730951, 0.5)
    """
    check_positive("n_blocks", n_blocks)
    return (2 * n_blocks) ** 0.25, (8 * n_blocks) ** -0.25


@torch.no_grad()
def deepnorm_init_(module: nn.Module, beta: float) -> nn.Module:
    """DeepNorm initialisation of every `SwinBlock` inside ``module``, in place.

    As in Wang et al. 2022: Xavier-normal weights with gain ``beta`` for the value and
    output projections and both MLP layers, gain 1 for the queries and keys. Each of q, k,
    v is initialised as its own C x C matrix, as if the fused projection were three.
    Biases and the relative position bias keep their initialisation.

    Returns:
        ``module``, for chaining.
    """
    blocks = [m for m in module.modules() if isinstance(m, SwinBlock)]
    if not blocks:
        raise ValueError(f"module contains no SwinBlock: {type(module).__name__}")
    for block in blocks:
        q, k, v = block.attn.qkv.weight.chunk(3, dim=0)
        for weight, gain in ((q, 1.0), (k, 1.0), (v, beta), (block.attn.proj.weight, beta)):
            nn.init.xavier_normal_(weight, gain=gain)
        for layer in block.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_normal_(layer.weight, gain=beta)
    return module
