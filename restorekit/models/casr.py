"""CASR: the generator of CASRGAN, MRI super-resolution with combined attention.

SPEC.md section C and seeds/002 (CASRGAN: channel attention in convolutional blocks,
self-attention in a Swin Transformer block with DeepNorm). Building blocks:
- RDB: Zhang et al., RDN, CVPR 2018, https://arxiv.org/abs/1802.08797
- squeeze-excitation: Hu et al., CVPR 2018, https://arxiv.org/abs/1709.01507
- Swin Transformer: Liu et al., ICCV 2021, https://arxiv.org/abs/2103.14030
- DeepNorm: Wang et al., "DeepNet", 2022, https://arxiv.org/abs/2203.00555

On the low-resolution image (C = 128)::

    s = ReLU(conv3x3(x))                              # shallow features, in -> C
    f = AFEB_20(...AFEB_1(s))                          # adaptive feature extraction blocks
    g = GFF(concat(AFEB outputs))                      # RDN's global fusion: 1x1, 3x3
    g = SAB(g)                                         # self-attention block
    y = bicubic(x) + conv3x3(Upsampler(g + s))        # pixel shuffle (x4: two x2), C -> in

- AFEB(x) = x + 0.1 * RDB(SE(x + AHPF(x))): the adaptive high-pass filter's response is
  added to its input (it sharpens the features rather than replacing them, so the low
  frequencies still reach the RDB), squeeze-excitation (reduction 4) reweights the
  channels, the RDB (growth 32, 6 layers, its own local residual) extracts features, and
  the block input is added around it all. Widths and this wiring follow the CASRGAN
  authors' published generator.
- Initialisation. Because the RDB carries its own input through, an unscaled block maps x
  to about x + 0.5 x + ...: twenty of them multiplied a fresh network's features by
  about 1.5^20, and a [0, 1] input came out with a standard deviation of 1,400-3,600.
  Two changes from EDSR/RDN practice keep a fresh network sane: the block's branch is
  scaled by ``res_scale`` (0.1, EDSR's residual scaling), and the network predicts a
  residual over the bicubic-upsampled input whose last conv starts at zero, so an
  untrained CASR returns exactly ``bicubic(x)`` and training starts from bicubic's PSNR
  instead of a loss in the thousands.
- SAB(x) = x + 0.1 * conv(ReLU(conv(unembed(Swin_2(Swin_1(embed(x))))))):
  ``embed`` is Swin's patch embedding, a conv with kernel = stride = patch size 6 (C -> 96),
  so the two Swin blocks (W-MSA then SW-MSA, 6 heads, window 4) work on a 6x coarser token
  grid and one window spans 24x24 LR pixels; ``unembed`` is a 1x1 conv 96 -> C * 6^2 and
  PixelShuffle(6) back to full resolution. The output convs and the residual scaling of 0.1
  (EDSR's) keep the block close to the identity when it starts, and let its patch-grid
  output be smoothed before it is added.
- The Swin blocks are post-LayerNorm with the DeepNorm residual ``LN(lambda * x + f(x))``,
  lambda = (2N)^(1/4) = sqrt(2) for N = 2 blocks, the value, output and MLP projections
  Xavier-initialised with gain beta = (8N)^(-1/4) = 0.5 (`deepnorm_init_`), and dropout 0.1
  after the attention projection and in the MLP. For the seed's stage-1 fine-tuning
  ("lambda set to 1 and 20 more epochs") call ``model.set_deepnorm_alpha(1.0)``; lambda is
  a buffer, so checkpoints carry it.

``size_multiple`` is the patch size (6): the stride-6 embedding needs H and W divisible by
it, which `Restorer.forward` provides by padding and cropping back; the windows need no
more, since `SwinBlock` pads its token grid to the window size itself and masks the padding.
The default ``in_channels`` is 1 (grayscale MRI). At x4 on one channel the model has
11,251,073 parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from restorekit.layers import (
    AHPF,
    RDB,
    ChannelAttention,
    SwinBlock,
    Upsampler,
    deepnorm_constants,
    deepnorm_init_,
)
from restorekit.models import register
from restorekit.models.base import Restorer, check_choice, check_positive, with_defaults

__all__ = ["AFEB", "CASR", "SAB"]


# What the registry knows of this file's models (restorekit.registry.Entry).
_PAPER = "CASRGAN's generator (SPEC.md C), from RDN, SE and Swin blocks"
_TINY = {
    "n_blocks": 2,
    "channels": 12,
    "growth": 4,
    "n_layers": 2,
    "embed_dim": 12,
    "num_heads": 2,
}  # a test-size configuration
_META = dict(kind="restorer", scales=(2, 3, 4), channels=1, tiny=_TINY, paper=_PAPER)


class AFEB(nn.Module):
    """Adaptive feature extraction block: ``x + res_scale * RDB(SE(x + AHPF(x)))``
    (module doc).

    Shapes:
        (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        *,
        growth: int,
        n_layers: int,
        se_reduction: int,
        res_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.ahpf = AHPF(channels)
        self.se = ChannelAttention(channels, reduction=se_reduction)
        self.rdb = RDB(channels, growth, n_layers)
        self.res_scale = float(res_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.rdb(self.se(x + self.ahpf(x)))


class SAB(nn.Module):
    """Self-attention block: patch embedding, Swin blocks with DeepNorm, un-embedding.

    Args:
        channels: C, input and output channels.
        embed_dim: token width of the Swin blocks.
        patch_size: side of the patches one token stands for (H, W must divide it).
        num_heads: attention heads.
        window_size: window side, in tokens.
        n_swin: Swin blocks N, alternating W-MSA and SW-MSA (shift window_size // 2).
        drop: dropout in the blocks.

    Shapes:
        (B, C, H, W) -> (B, C, H, W), H and W multiples of ``patch_size``.
    """

    def __init__(
        self,
        channels: int,
        *,
        embed_dim: int,
        patch_size: int,
        num_heads: int,
        window_size: int,
        n_swin: int,
        drop: float,
    ) -> None:
        super().__init__()
        self.deepnorm_alpha, self.deepnorm_beta = deepnorm_constants(n_swin)
        self.embed = nn.Conv2d(channels, embed_dim, patch_size, stride=patch_size)
        self.swin = nn.Sequential(
            *(
                SwinBlock(
                    embed_dim,
                    num_heads,
                    window_size,
                    0 if i % 2 == 0 else window_size // 2,
                    drop=drop,
                    deepnorm_alpha=self.deepnorm_alpha,
                )
                for i in range(n_swin)
            )
        )
        deepnorm_init_(self.swin, self.deepnorm_beta)
        self.unembed = nn.Sequential(
            nn.Conv2d(embed_dim, channels * patch_size**2, 1), nn.PixelShuffle(patch_size)
        )
        # conv-ReLU-conv with no final ReLU (the authors' code has one), so the block can
        # also subtract from its input.
        self.out = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.1 * self.out(self.unembed(self.swin(self.embed(x))))


@register("casr", **_META)
class CASR(Restorer):
    """CASR generator (SPEC.md C): 20 AFEBs at 128 channels, one SAB, pixel-shuffle up.

    Args:
        scale: 2, 3 or 4.
        in_channels: 1 (grayscale MRI, the default) or 3; the output has as many.
        n_blocks: AFEBs (20).
        channels: C, feature channels (128).
        growth, n_layers: the RDB inside each AFEB (32, 6).
        se_reduction: squeeze-excitation reduction (4).
        embed_dim, patch_size, num_heads, window_size, n_swin: the SAB (96, 6, 6, 4, 2).
        drop: dropout in the Swin blocks (0.1).
        res_scale: scale of each AFEB's branch (0.1; module doc, "Initialisation").

    Shapes:
        (B, in_channels, H, W) -> (B, in_channels, scale*H, scale*W); any H and W.

    Example:
        >>> model = CASR(scale=2, n_blocks=1, channels=12, growth=4, n_layers=1,
        ...              embed_dim=12, num_heads=2)
        >>> model(torch.rand(1, 1, 13, 17)).shape
        torch.Size([1, 1, 26, 34])
    """

    # Training step, channels_last over NCHW: 0.88x in fp32 on an AVX2 EPYC, but 1.24x
    # (fp32) and 1.42x (bf16) on a Sapphire Rapids with AMX; so only under bf16, which
    # ``auto`` picks exactly on such CPUs.
    prefers_channels_last = "bf16"

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 1,
        n_blocks: int = 20,
        channels: int = 128,
        growth: int = 32,
        n_layers: int = 6,
        se_reduction: int = 4,
        embed_dim: int = 96,
        patch_size: int = 6,
        num_heads: int = 6,
        window_size: int = 4,
        n_swin: int = 2,
        drop: float = 0.1,
        res_scale: float = 0.1,
    ) -> None:
        super().__init__()
        check_choice("scale", scale, (2, 3, 4))
        check_choice("in_channels", in_channels, (1, 3))
        check_positive(n_blocks=n_blocks, patch_size=patch_size)
        if not 0.0 <= drop < 1.0:
            raise ValueError(f"drop must be in [0, 1), got {drop!r}")
        if not (math.isfinite(res_scale) and 0.0 < res_scale <= 1.0):
            raise ValueError(f"res_scale must be in (0, 1], got {res_scale!r}")
        self.scale = scale
        self.in_channels = in_channels
        self.size_multiple = patch_size
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU())
        self.blocks = nn.ModuleList(
            AFEB(
                channels,
                growth=growth,
                n_layers=n_layers,
                se_reduction=se_reduction,
                res_scale=res_scale,
            )
            for _ in range(n_blocks)
        )
        self.gff = nn.Sequential(
            nn.Conv2d(n_blocks * channels, channels, 1), nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.sab = SAB(
            channels,
            embed_dim=embed_dim,
            patch_size=patch_size,
            num_heads=num_heads,
            window_size=window_size,
            n_swin=n_swin,
            drop=drop,
        )
        self.tail = nn.Sequential(
            Upsampler(scale, channels), nn.Conv2d(channels, in_channels, 3, padding=1)
        )
        # A residual over bicubic that starts at zero: a fresh CASR is bicubic (module doc).
        nn.init.zeros_(self.tail[-1].weight)
        nn.init.zeros_(self.tail[-1].bias)

    @torch.no_grad()
    def set_deepnorm_alpha(self, value: float) -> None:
        """Set the DeepNorm residual scale lambda of every Swin block (1: plain post-LN).

        The seed's stage 1 ends with lambda set to 1 and 20 more epochs of training.
        """
        value = float(value)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"the DeepNorm alpha must be a positive number, got {value!r}")
        for block in self.sab.swin:
            block.deepnorm_alpha.fill_(value)

    def on_stage(self, *, deepnorm_alpha: float | None = None) -> None:
        """The trainer's stage hook: a stage's ``model_options`` (the seed's switch of
        lambda to 1, ``{deepnorm_alpha: 1.0}``)."""
        if deepnorm_alpha is not None:
            self.set_deepnorm_alpha(deepnorm_alpha)

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        s = self.head(x)
        f, outs = s, []
        for block in self.blocks:
            f = block(f)
            outs.append(f)
        g = self.sab(self.gff(torch.cat(outs, dim=1)))
        up = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return up + self.tail(g + s)


_SMALL = {"n_blocks": 6, "channels": 64, "n_layers": 4, "embed_dim": 48}


@register("casr_small", **_META)
def casr_small(**kwargs: object) -> CASR:
    """CASR at a size a CPU can train: 6 AFEBs of 64 channels (RDBs of 4 layers, growth 32)
    and a 48-wide SAB, the same wiring as the paper-size :class:`CASR` (20 x 128). Takes
    CASR's arguments, with these defaults (its signature says so, so checkpoints record
    every one).

    Example:
        >>> sum(p.numel() for p in casr_small(scale=2).parameters())
        1427203
    """
    return CASR(**{**_SMALL, **kwargs})  # type: ignore[arg-type]


casr_small.__signature__ = with_defaults(CASR, _SMALL)  # type: ignore[attr-defined]
