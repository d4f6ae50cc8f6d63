"""Attention layers on (B, C, H, W) feature maps.

Papers:
- Squeeze-and-Excitation, Hu et al., CVPR 2018: https://arxiv.org/abs/1709.01507
- FFA-Net channel and pixel attention, Qin et al., AAAI 2020: https://arxiv.org/abs/1911.07559
- scSE, Roy et al., MICCAI 2018: https://arxiv.org/abs/1803.02579
- Attention U-Net gates, Oktay et al., MIDL 2018: https://arxiv.org/abs/1804.03999
- Efficient Attention, Shen et al., WACV 2021: https://arxiv.org/abs/1812.01243

Every layer keeps the input shape. Gating layers return the input multiplied by weights
in (0, 1), except `SCSE`, whose two gates add up to weights in (0, 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorekit.utils import check_positive

__all__ = [
    "SCSE",
    "AttentionGate",
    "ChannelAttention",
    "EfficientAttention",
    "PixelAttention",
    "ProgressiveAttentionRefinement",
]


class ChannelAttention(nn.Module):
    """Channel attention: squeeze-and-excitation (SE) and FFA-Net's CA layer.

    Hu et al. 2018 (https://arxiv.org/abs/1709.01507) and Qin et al. 2020
    (https://arxiv.org/abs/1911.07559) use the same structure: global average pool ->
    1x1 conv C -> C/r -> ReLU -> 1x1 conv C/r -> C -> sigmoid, both convs with bias, then
    ``x * weights``. SE uses ``reduction=16``, FFA-Net ``reduction=8``; one class serves both.

    Args:
        channels: C, the number of input channels.
        reduction: r; the bottleneck has ``max(1, C // r)`` channels.

    Shapes:
        (B, C, H, W) -> (B, C, H, W).

    Example:
        >>> ChannelAttention(32, reduction=8)(torch.rand(2, 32, 5, 7)).shape
        torch.Size([2, 32, 5, 7])
    """

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(
            1, check_positive("channels", channels) // check_positive("reduction", reduction)
        )
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def attention(self, x: Tensor) -> Tensor:
        """Per-channel weights in (0, 1), shape (B, C, 1, 1).

        FFA-Net's feature fusion uses these directly to weight its group outputs.
        """
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.attention(x)


class PixelAttention(nn.Module):
    """FFA-Net pixel attention: one weight per pixel, shared by all channels.

    Qin et al. 2020 (https://arxiv.org/abs/1911.07559): 1x1 conv C -> C/r -> ReLU ->
    1x1 conv C/r -> 1 -> sigmoid, then ``x * map``. `logits` exposes the map before the
    sigmoid so `ProgressiveAttentionRefinement` can pass it from stage to stage.

    Args:
        channels: C, the number of input channels.
        reduction: r; the hidden layer has ``max(1, C // r)`` channels (FFA-Net: 8).

    Shapes:
        (B, C, H, W) -> (B, C, H, W); `logits`: (B, C, H, W) -> (B, 1, H, W).
    """

    def __init__(self, channels: int, *, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(
            1, check_positive("channels", channels) // check_positive("reduction", reduction)
        )
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )

    def logits(self, x: Tensor) -> Tensor:
        """The attention map before its sigmoid, shape (B, 1, H, W)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.logits(x))


class ProgressiveAttentionRefinement(nn.Module):
    """Pixel attention refined by the previous stage's map (PAR, SPEC.md section A).

    The FFA-Net+EA+PAR write-up asks for attention maps refined stage by stage,
    ``A(t+1) = Refine(A(t))``, without fixing the operator. restorekit's reading, in
    logit space so the maps of many stages can be chained without saturating::

        logits(t+1) = PA_logits(x) + conv_kxk(logits(t))
        out         = x * sigmoid(logits(t+1))

    ``conv_kxk`` (1 -> 1 channel, bias) starts at zero, so a fresh module equals plain
    `PixelAttention`, and training learns how much of the previous map to keep. With
    ``prev_logits=None`` (the first stage) it is plain `PixelAttention`. A previous map of
    another spatial size is resized bilinearly first.

    Args:
        channels: C, the number of input channels.
        reduction: reduction of the inner `PixelAttention`.
        kernel_size: odd size of the refining convolution.

    Shapes:
        x (B, C, H, W), prev_logits (B, 1, H', W') or None ->
        (out (B, C, H, W), logits (B, 1, H, W)); pass ``logits`` to the next stage.

    Example:
        >>> par = ProgressiveAttentionRefinement(16)
        >>> out, logits = par(torch.rand(1, 16, 6, 6))
        >>> out, logits = par(torch.rand(1, 16, 6, 6), logits)
        >>> tuple(out.shape), tuple(logits.shape)
        ((1, 16, 6, 6), (1, 1, 6, 6))
    """

    def __init__(self, channels: int, *, reduction: int = 8, kernel_size: int = 3) -> None:
        super().__init__()
        if check_positive("kernel_size", kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.pa = PixelAttention(channels, reduction=reduction)
        self.refine = nn.Conv2d(1, 1, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.refine.weight)
        nn.init.zeros_(self.refine.bias)

    def forward(self, x: Tensor, prev_logits: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logits = self.pa.logits(x)
        if prev_logits is not None:
            if prev_logits.shape[-2:] != x.shape[-2:]:
                prev_logits = F.interpolate(
                    prev_logits, size=x.shape[-2:], mode="bilinear", align_corners=False
                )
            logits = logits + self.refine(prev_logits)
        return x * torch.sigmoid(logits), logits


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze-and-excitation (scSE).

    Roy et al. 2018 (https://arxiv.org/abs/1803.02579). cSE is `ChannelAttention`
    (a per-channel gate); sSE is a 1x1 conv C -> 1 with sigmoid (a per-pixel gate). The two
    recalibrated maps are added, as in the paper's scSE: ``x * cSE(x) + x * sSE(x)``, so
    the effective weight per element lies in (0, 2).

    Args:
        channels: C, the number of input channels.
        reduction: bottleneck reduction of the cSE branch.

    Shapes:
        (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        self.cse = ChannelAttention(channels, reduction=reduction)
        self.sse = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.cse.attention(x) + x * self.sse(x)


class AttentionGate(nn.Module):
    """Additive attention gate of Attention U-Net.

    Oktay et al. 2018 (https://arxiv.org/abs/1804.03999): the gating signal g (coarser,
    decoder side) selects which pixels of the skip connection x pass::

        alpha = sigmoid(BN(psi(ReLU(BN(W_g g) + BN(W_x x)))))      # (B, 1, H, W)
        out   = x * alpha

    W_g, W_x and psi are 1x1 convs with bias, each followed by BatchNorm as in the widely
    used Attention U-Net implementation. The paper computes W_x at half resolution; here,
    as in that implementation, g and x have the same size (the U-Net upsamples g first);
    if they differ, g is resized bilinearly to x's size.

    Args:
        gate_channels: channels of g.
        skip_channels: channels of x.
        inter_channels: channels of the intermediate sum.

    Shapes:
        g (B, gate_channels, H', W'), x (B, skip_channels, H, W) -> (B, skip_channels, H, W).
    """

    def __init__(self, gate_channels: int, skip_channels: int, inter_channels: int) -> None:
        super().__init__()

        def conv_bn(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout))

        inter = check_positive("inter_channels", inter_channels)
        self.w_g = conv_bn(check_positive("gate_channels", gate_channels), inter)
        self.w_x = conv_bn(check_positive("skip_channels", skip_channels), inter)
        self.psi = conv_bn(inter, 1)

    def coefficients(self, g: Tensor, x: Tensor) -> Tensor:
        """The attention coefficients alpha in (0, 1), shape (B, 1, H, W)."""
        if g.shape[-2:] != x.shape[-2:]:
            g = F.interpolate(g, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(self.psi(F.relu(self.w_g(g) + self.w_x(x))))

    def forward(self, g: Tensor, x: Tensor) -> Tensor:
        return x * self.coefficients(g, x)


class EfficientAttention(nn.Module):
    """Self-attention with linear cost in the number of pixels N.

    Shen et al., WACV 2021 (https://arxiv.org/abs/1812.01243). Keys, queries and values are
    1x1 convs. For each head, with K, Q of shape (d_k, N) and V of shape (d_v, N)::

        K' = softmax(K) over the N positions      Q' = softmax(Q) over the d_k channels
        context = K' V^T                          (d_k, d_v): the N x N matrix never exists
        out_h   = context^T Q'                    (d_v, N)

    The heads are concatenated, reprojected by a 1x1 conv to C channels and added to the
    input. Cost O(N * d_k * d_v) instead of O(N^2). `forward` is the fused einsum path;
    `reference` computes the same maths head by head, matrix by matrix, for tests.

    Args:
        channels: C, the input and output channels.
        key_channels: total key/query channels over all heads (default C).
        value_channels: total value channels over all heads (default C).
        heads: number of heads; must divide key_channels and value_channels.

    Shapes:
        (B, C, H, W) -> (B, C, H, W).

    Example:
        >>> ea = EfficientAttention(16, heads=2)
        >>> x = torch.rand(1, 16, 5, 3)
        >>> torch.allclose(ea(x), ea.reference(x), atol=1e-5)
        True
    """

    def __init__(
        self,
        channels: int,
        *,
        key_channels: int | None = None,
        value_channels: int | None = None,
        heads: int = 1,
    ) -> None:
        super().__init__()
        channels = check_positive("channels", channels)
        key_channels = check_positive(
            "key_channels", channels if key_channels is None else key_channels
        )
        value_channels = check_positive(
            "value_channels", channels if value_channels is None else value_channels
        )
        self.heads = check_positive("heads", heads)
        for name, value in (("key_channels", key_channels), ("value_channels", value_channels)):
            if value % heads:
                raise ValueError(f"{name}={value} is not divisible by heads={heads}")
        self.keys = nn.Conv2d(channels, key_channels, 1)
        self.queries = nn.Conv2d(channels, key_channels, 1)
        self.values = nn.Conv2d(channels, value_channels, 1)
        self.reprojection = nn.Conv2d(value_channels, channels, 1)

    def _heads(self, t: Tensor) -> Tensor:
        """(B, heads * d, H, W) -> (B, heads, d, N)."""
        return t.reshape(t.shape[0], self.heads, -1, t.shape[2] * t.shape[3])

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        k, q, v = (self._heads(f(x)) for f in (self.keys, self.queries, self.values))
        k, q = k.softmax(dim=-1), q.softmax(dim=-2)  # keys over positions, queries over channels
        context = torch.einsum("bhkn,bhvn->bhkv", k, v)
        out = torch.einsum("bhkv,bhkn->bhvn", context, q)
        return x + self.reprojection(out.reshape(b, -1, h, w))

    def reference(self, x: Tensor) -> Tensor:
        """The same result as `forward`, written step by step with a loop over heads."""
        b, _, h, w = x.shape
        # Each (B, channels, N): all heads stacked along the channels.
        keys, queries, values = (f(x).flatten(2) for f in (self.keys, self.queries, self.values))
        d_k, d_v = keys.shape[1] // self.heads, values.shape[1] // self.heads
        heads = []
        for i in range(self.heads):
            k = keys[:, i * d_k : (i + 1) * d_k].softmax(dim=2)  # over positions
            q = queries[:, i * d_k : (i + 1) * d_k].softmax(dim=1)  # over channels
            v = values[:, i * d_v : (i + 1) * d_v]
            context = k @ v.transpose(1, 2)  # (B, d_k, d_v)
            heads.append(context.transpose(1, 2) @ q)  # (B, d_v, N)
        return x + self.reprojection(torch.cat(heads, dim=1).reshape(b, -1, h, w))
