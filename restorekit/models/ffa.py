"""FFA-Net dehazing, with the Efficient Attention and Progressive Attention Refinement switches.

Qin et al., "FFA-Net: Feature Fusion Attention Network for Single Image Dehazing",
AAAI 2020, https://arxiv.org/abs/1911.07559 (official code: github.com/zhilin007/FFA-Net).
SPEC.md section A and seeds/000 add two switches, both off by default:

- ``efficient_attention``: one `EfficientAttention` layer (Shen et al., WACV 2021,
  https://arxiv.org/abs/1812.01243) on the fused features, after the fusion's pixel
  attention and before the two output convs. Why there and only there: it is a *global*
  layer (every pixel sees a summary of the whole image), and one global layer per network
  already supplies what the local 3x3 blocks lack, i.e. image-wide haze context such as
  the airlight; the fused map is the one place that holds every group's features, so one
  layer serves them all at the cost of a single 64-channel layer (O(N C^2): 1.6 GMACs at
  256x256, 0.6% of FFA-Net's 287 and 1.9% of the light variant's 83). One layer per group
  would triple that for context the later groups mostly recompute. Its output projection
  starts at zero (ReZero-style), so a fresh EA layer is the identity and EA can be added
  to, or fine-tuned from, plain FFA-Net weights; its keys, queries and values start
  learning once the projection has moved off zero, after the first step.
- ``progressive_refinement``: the seed's ``A(t+1) = Refine(A(t))`` with the G groups as the
  stages. Group 1's last pixel attention is FFA's own; the last pixel attention of every
  later group is a `ProgressiveAttentionRefinement` fed the previous group's attention
  logits, and the fusion's pixel attention is the final stage, fed the last group's map
  (the seed integrates the features with "the final refined attention map"). Each
  refining conv starts at zero, so a fresh PAR network computes plain FFA-Net and training
  learns how much of the earlier maps to keep.

A fresh network is the identity (the last conv starts at zero; the global residual
carries the input), unlike the official code's default initialisation, so training
starts from "no haze" instead of from noise added to the image. With both switches off
the network is the official FFA-Net layer for layer: 4,455,913
parameters at G=3, B=19 (the paper's 4.46 M) and 1,285,711 for the seed's light variant
with B=5 (BENCHMARKS.md: 1.29 M); `convert_official_state_dict` loads the official
checkpoints (``its_train_ffa_3_19.pk``, ``ots_train_ffa_3_19.pk``).

``output="scattering"`` (restorekit's, not the paper's) replaces the global residual by
the atmospheric scattering model that makes the haze, I = J t + A (1 - t), inverted:
J = A + (I - A) / t. The tail's last conv gives log(1/t) per pixel (one map for the three
channels, clamped to t in [0.05, 2]), and the airlight A, one colour per image, is read
from the fused features averaged over the image (a linear layer and a sigmoid, starting
at a light grey, 0.9: haze brightens a scene, so stretching it away from a bright
airlight darkens it the right way from the first step; the airlight of a random-depth
scene need not appear in any of its pixels, so it is regressed rather than picked). Where
the network sees no haze it says t = 1 and the input comes back exactly, and colour
changes follow from one airlight per image rather than from per-pixel colour guesses; a
clear image is still altered where the network reads haze into it (1/t > 1 pushes each
pixel away from the bright airlight: darker); ``deadzone`` soft-thresholds log(1/t), so
a faint reading gives the input back exactly (trained with it, the loss sees the
thresholded map, and readings inside the zone get no gradient). A fresh network returns
its input (log(1/t) starts at zero). A training forward leaves its log(1/t) and A in
``aux_outputs``, where the ``scattering`` loss term compares them with the haze's own
(``Haze`` returns both).

``guide="dcp"`` (restorekit's) gives the network the dark channel prior's reading of the
haze (He et al. 2009: :func:`~restorekit.layers.haze.dcp_transmission`, computed from the
input without gradients): its log(1/t) map and its airlight enter the head through their
own 3x3 conv, and with the scattering output DCP's log(1/t) is also added to the
network's, times a gain per pixel that a 3x3 conv reads from the features the tail reads.
Why: a network trained for minutes reads the haze's thickness weakly (its log(1/t)
follows the truth's at about 0.6x on colour photos, barely on grey ones, on training
photos as on new ones), while the prior measures the thickness directly; the network
can then learn where to trust it (DCP fails on bright grey surfaces and on clear images,
where the gain must fall to zero, and comes close in dense haze). Both convs start at
zero, so weights trained without the guide load (strict=False) and compute the same
network; give them their own ``lr_scale`` to learn quickly. (The gain was one scalar in
git 61613d6; such weights load as a gain conv with that bias and zero weights.)

``global_gain=True`` (restorekit's) multiplies the global residual by one gain per image,
in (0, 3), read from the input and the residual through four stride-2 convs averaged
over the image. Why: the residual's direction is right far more often than its size.
Scaling the shipped ffa_light's residual by the best gain for each held-out image (stop 39)
gave 0 on clear images (the input back, where the network darkened it to 24-36 dB), 0.1-0.8
in faint haze, 0.6-1.8 in light and 1.4-2.5 in dense haze (the sklearn flower: 13.6 dB at
gain 1, 22.0 at 2.5), and training crops show the same spread. The last layer starts at
zero with the gain at 1, so weights trained without it load (strict=False) and compute the
same network; training the gain alone (``frozen: [head, groups, fusion, fusion_pa, ea,
tail]``) needs no gradient through the body. Not shipped: trained on crops, the gain
learned the crops' content and scale rather than their haze (ffa_light's card, stop 39).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorekit.layers import (
    ChannelAttention,
    EfficientAttention,
    PixelAttention,
    ProgressiveAttentionRefinement,
)
from restorekit.layers.haze import dcp_transmission
from restorekit.models import register
from restorekit.models.base import Restorer, check_choice, check_positive
from restorekit.utils import check_arg

__all__ = ["FFA", "convert_official_state_dict", "ffa_light"]

_PAPER = "Qin et al. 2020, https://arxiv.org/abs/1911.07559"


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class _Block(nn.Module):
    """FFA block: conv-ReLU-(+x)-conv-CA-PA-(+x); the PA can refine a previous map."""

    def __init__(self, channels: int, *, refine: bool) -> None:
        super().__init__()
        self.conv1, self.conv2 = _conv(channels, channels), _conv(channels, channels)
        self.ca = ChannelAttention(channels, reduction=8)
        self.pa: nn.Module = (
            ProgressiveAttentionRefinement(channels)
            if refine
            else PixelAttention(channels, reduction=8)
        )

    def forward(self, x: Tensor, prev_logits: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Returns the block output and its pixel-attention logits (B, 1, H, W)."""
        res = self.ca(self.conv2(torch.relu(self.conv1(x)) + x))
        if isinstance(self.pa, ProgressiveAttentionRefinement):
            res, logits = self.pa(res, prev_logits)
        else:
            logits = self.pa.logits(res)
            res = res * torch.sigmoid(logits)
        return res + x, logits


class _GlobalGain(nn.Module):
    """One gain per image in (0, 3) for the residual, from the input and the residual
    through four stride-2 3x3 convs (16-32-32-64 channels, ReLU), the mean over the image
    and a 64-64-1 MLP; starts at 1 (zero last layer)."""

    MAX = 3.0

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        widths, layers = (2 * in_channels, 16, 32, 32, 64), []
        for cin, cout in itertools.pairwise(widths):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.mlp = nn.Sequential(nn.Linear(64, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.constant_(self.mlp[2].bias, -math.log(self.MAX - 1))  # MAX sigmoid(b) = 1

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        """(B, 1, 1, 1) float32 gains."""
        pooled = self.features(torch.cat([x, residual], dim=1)).mean(dim=(2, 3))
        return self.MAX * torch.sigmoid(self.mlp(pooled).float())[:, :, None, None]


class _Group(nn.Module):
    """B blocks, a conv, and the group residual; passes its last attention logits on."""

    def __init__(self, channels: int, blocks: int, *, refine: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            _Block(channels, refine=refine and i == blocks - 1) for i in range(blocks)
        )
        self.conv = _conv(channels, channels)

    def forward(self, x: Tensor, prev_logits: Tensor | None = None) -> tuple[Tensor, Tensor]:
        res = x
        for block in self.blocks[:-1]:
            res, _ = block(res)
        res, logits = self.blocks[-1](res, prev_logits)
        return self.conv(res) + x, logits


@register(
    "ffa",
    kind="restorer",
    channels=3,
    tiny={
        "groups": 2,
        "blocks": 1,
        "channels": 8,
        "efficient_attention": True,
        "progressive_refinement": True,
    },
    paper=_PAPER,
)
class FFA(Restorer):
    """FFA-Net (Qin et al. 2020) with the EA and PAR switches of SPEC.md section A.

    Shallow 3x3 conv (in -> C); G groups of B blocks, each group ending in a conv and a
    residual; feature fusion attention: a channel attention on the concatenated group
    outputs gives each group per-channel weights (hidden width C // 16), the weighted sum
    goes through a pixel attention; conv 3x3 C -> C, conv 3x3 C -> in; the input is added.

    Args:
        groups: G (paper: 3).
        blocks: B, blocks per group (paper: 19; the seed's light variant, ``ffa_light``: 5).
        channels: C (paper: 64).
        in_channels: 3 (RGB) or 1; the output has as many.
        efficient_attention: add one EfficientAttention layer after the fusion (module doc).
        progressive_refinement: chain the groups' pixel attention maps (module doc).
        output: ``"residual"`` (the paper's global residual) or ``"scattering"`` (the
            inverted scattering model with a transmission map and an airlight; module doc).
        guide: ``"none"``, or ``"dcp"``: the dark channel prior's transmission and airlight
            of the input (:func:`~restorekit.layers.haze.dcp_transmission`) as a cue
            (module doc).
        deadzone: with the scattering output, log(1/t) is soft-thresholded by this much
            (``softshrink``: values within it become 0, the rest move towards 0 by it), so
            a clear image the network reads as faintly hazy comes back exactly; 0 (the
            default) leaves it as it is. The shipped ffa_light_scatter is trained with 0.05
            (its card: clear and faint images +1.8 to +9 dB held out).
        global_gain: scale the residual by one gain per image read from the whole image
            (module doc); residual output only.

    Shapes:
        (B, in_channels, H, W) in [0, 1] -> (B, in_channels, H, W); any H and W.

    Example:
        >>> FFA(groups=2, blocks=1, channels=16)(torch.rand(1, 3, 13, 17)).shape
        torch.Size([1, 3, 13, 17])
    """

    def __init__(
        self,
        *,
        groups: int = 3,
        blocks: int = 19,
        channels: int = 64,
        in_channels: int = 3,
        efficient_attention: bool = False,
        progressive_refinement: bool = False,
        output: str = "residual",
        guide: str = "none",
        deadzone: float = 0.0,
        global_gain: bool = False,
    ) -> None:
        super().__init__()
        check_choice("in_channels", in_channels, (1, 3))
        check_choice("output", output, ("residual", "scattering"))
        check_choice("guide", guide, ("none", "dcp"))
        check_positive(groups=groups, blocks=blocks, channels=channels)
        check_arg(deadzone >= 0, "deadzone", deadzone, ">= 0")
        check_arg(deadzone == 0 or output == "scattering", "deadzone", deadzone,
                  "0 unless output='scattering'")  # fmt: skip
        check_arg(not global_gain or output == "residual", "global_gain", global_gain,
                  "False unless output='residual'")  # fmt: skip
        self.deadzone = float(deadzone)
        self.in_channels = in_channels
        self.channels = channels
        self.progressive_refinement = bool(progressive_refinement)
        self.head = _conv(in_channels, channels)
        # Group 0 has no earlier map to refine; it only starts the chain.
        self.groups = nn.ModuleList(
            _Group(channels, blocks, refine=self.progressive_refinement and g > 0)
            for g in range(groups)
        )
        # FFA's fusion CA: (G*C) -> C // 16 -> (G*C); reduction 16 G gives exactly C // 16.
        self.fusion = ChannelAttention(groups * channels, reduction=16 * groups)
        self.fusion_pa: nn.Module = (
            ProgressiveAttentionRefinement(channels)
            if self.progressive_refinement
            else PixelAttention(channels, reduction=8)
        )
        self.ea: EfficientAttention | None = None
        if efficient_attention:
            self.ea = EfficientAttention(channels)
            nn.init.zeros_(self.ea.reprojection.weight)  # a fresh EA layer is the identity
            nn.init.zeros_(self.ea.reprojection.bias)
        scattering = output == "scattering"
        out_channels = 1 if scattering else in_channels  # log(1/t), or the residual
        self.tail = nn.Sequential(_conv(channels, channels), _conv(channels, out_channels))
        # The last conv starts at zero, so a fresh network returns its input: a clear image
        # comes back unharmed from the first step, and training learns only the haze.
        nn.init.zeros_(self.tail[1].weight)
        nn.init.zeros_(self.tail[1].bias)
        self.airlight: nn.Linear | None = None
        if scattering:  # the airlight from the pooled features; a fresh one is grey 0.9
            self.airlight = nn.Linear(channels, in_channels)
            nn.init.zeros_(self.airlight.weight)
            nn.init.constant_(self.airlight.bias, math.log(0.9 / 0.1))
        # The dark channel prior's haze estimate as a cue: log(1/t) and the airlight, into
        # the head through their own conv; with the scattering output DCP's log(1/t) is
        # also added to the tail's, times a gain per pixel that a conv reads from the
        # tail's features. Both convs start at zero, so weights trained without the guide
        # load and compute the same network.
        self.guide: nn.Conv2d | None = None
        self.guide_gain: nn.Conv2d | None = None
        if guide == "dcp":
            self.guide = _conv(1 + in_channels, channels)
            if scattering:  # the gain per pixel, read from the features the tail reads
                self.guide_gain = _conv(channels, 1)
            for conv in (self.guide, self.guide_gain):
                if conv is not None:
                    nn.init.zeros_(conv.weight)
                    nn.init.zeros_(conv.bias)
        self.global_gain = _GlobalGain(in_channels) if global_gain else None

    def adapt_state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """An official FFA-Net checkpoint's weights (``pre.0.*``, ``g1.gp.*``) renamed by
        :func:`convert_official_state_dict`; restorekit's own are kept as they are, except
        the scalar DCP gain of git 61613d6, which becomes the gain conv's bias."""
        official = any(k.startswith(("pre.", "g1.")) for k in state)
        if official:
            return convert_official_state_dict(state)
        gain = state.get("guide_gain")
        if gain is not None and gain.ndim == 0:  # the scalar gain of git 61613d6
            state = {k: v for k, v in state.items() if k != "guide_gain"}
            state["guide_gain.weight"] = gain.new_zeros(1, self.channels, 3, 3)
            state["guide_gain.bias"] = gain.reshape(1)
        return state

    def restore(self, x: Tensor) -> Tensor:
        feats, logits, dcp_log_inv_t = self.head(x), None, None
        if self.guide is not None:
            dcp_log_inv_t, cue = _dcp_cue(x)
            feats = feats + self.guide(cue.to(feats.dtype))
        outs = []
        for group in self.groups:
            feats, logits = group(feats, logits if self.progressive_refinement else None)
            outs.append(feats)
        b, n = x.shape[0], len(outs)
        weights = self.fusion.attention(torch.cat(outs, dim=1)).view(b, n, self.channels, 1, 1)
        fused = sum(weights[:, i] * out for i, out in enumerate(outs))
        if isinstance(self.fusion_pa, ProgressiveAttentionRefinement):
            fused, _ = self.fusion_pa(fused, logits)
        else:
            fused = self.fusion_pa(fused)
        if self.ea is not None:
            fused = self.ea(fused)
        if self.airlight is None:
            residual = self.tail(fused)
            if self.global_gain is not None:
                residual = residual * self.global_gain(x.to(residual.dtype), residual)
            return residual + x
        airlight = torch.sigmoid(self.airlight(fused.mean(dim=(2, 3))).float())
        log_inv_t = self.tail(fused)
        if self.guide_gain is not None and dcp_log_inv_t is not None:
            log_inv_t = log_inv_t + self.guide_gain(fused).float() * dcp_log_inv_t
        if self.deadzone:
            log_inv_t = F.softshrink(log_inv_t.float(), self.deadzone)
        # For the "scattering" loss term, which supervises both (training forwards only).
        self.aux_outputs = {"log_inv_t": log_inv_t, "airlight": airlight} if self.training else {}
        return _unscatter(x, log_inv_t, airlight)


_T_RANGE = (0.05, 2.0)
_LOG_INV_T = (math.log(1 / _T_RANGE[1]), math.log(1 / _T_RANGE[0]))


@torch.no_grad()
def _dcp_cue(x: Tensor) -> tuple[Tensor, Tensor]:
    """DCP's log(1/t) of ``x`` (B, 1, H, W; t clamped to [0.05, 1]) and the guide's input:
    that map and DCP's airlight broadcast per channel, (B, 1 + C, H, W), float32."""
    airlight, t = dcp_transmission(x)
    log_inv_t = -torch.log(t.clamp(min=_T_RANGE[0], max=1.0))
    return log_inv_t, torch.cat([log_inv_t, airlight[..., None, None].expand_as(x)], dim=1)


def _unscatter(x: Tensor, log_inv_t: Tensor, airlight: Tensor) -> Tensor:
    """J = A + (I - A) / t, with 1/t = exp(log_inv_t) (B, 1, H, W) and the airlight A
    (B, C); in float32 whatever the autocast (1/t reaches 20)."""
    a = airlight.float()[:, :, None, None]
    inv_t = torch.exp(log_inv_t.float().clamp(*_LOG_INV_T))
    return a + (x.float() - a) * inv_t


@register(
    "ffa_light",
    kind="restorer",
    channels=3,
    tiny={"blocks": 1, "channels": 8},
    paper=_PAPER,
)
def ffa_light(
    *,
    groups: int = 3,
    blocks: int = 5,
    channels: int = 64,
    in_channels: int = 3,
    efficient_attention: bool = False,
    progressive_refinement: bool = False,
    output: str = "residual",
    guide: str = "none",
    deadzone: float = 0.0,
    global_gain: bool = False,
) -> FFA:
    """The seed's light FFA-Net: 5 blocks per group (1,285,711 parameters, "1.29 M")."""
    return FFA(
        groups=groups,
        blocks=blocks,
        channels=channels,
        in_channels=in_channels,
        efficient_attention=efficient_attention,
        progressive_refinement=progressive_refinement,
        output=output,
        guide=guide,
        deadzone=deadzone,
        global_gain=global_gain,
    )


# Official FFA.py module names -> restorekit's (the official CALayer keeps its pooling
# outside the Sequential, so its convs are ca.0 / ca.2 where restorekit has body.1 / body.3).
_OFFICIAL_BLOCK = {
    "conv1": "conv1",
    "conv2": "conv2",
    "calayer.ca.0": "ca.body.1",
    "calayer.ca.2": "ca.body.3",
    "palayer.pa.0": "pa.body.0",
    "palayer.pa.2": "pa.body.2",
}
_OFFICIAL_TOP = {
    "pre.0": "head",
    "ca.1": "fusion.body.1",
    "ca.3": "fusion.body.3",
    "palayer.pa.0": "fusion_pa.body.0",
    "palayer.pa.2": "fusion_pa.body.2",
    "post.0": "tail.0",
    "post.1": "tail.1",
}


def convert_official_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official FFA-Net checkpoint's weights for :class:`FFA` (switches off).

    Accepts the official ``net`` state dict, with or without DataParallel's ``module.``
    prefix; group ``gK`` becomes ``groups.{K-1}``, and ``gK.gp.{B}`` (the conv closing a
    group of B blocks) ``groups.{K-1}.conv``. Load the result with
    ``FFA(blocks=B).load_state_dict(converted, strict=True)``.

    Raises:
        ValueError: a key that is not part of the official FFA-Net.

    Example:
        >>> sorted(convert_official_state_dict({"module.g2.gp.5.calayer.ca.0.bias": None}))
        ['groups.1.blocks.5.ca.body.1.bias']
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        module, _, param = key.removeprefix("module.").rpartition(".")
        group = re.fullmatch(r"g(\d+)\.gp\.(\d+)(?:\.(.+))?", module)
        if group and group[3] is None:
            new = f"groups.{int(group[1]) - 1}.conv"
        elif group and group[3] in _OFFICIAL_BLOCK:
            new = f"groups.{int(group[1]) - 1}.blocks.{group[2]}.{_OFFICIAL_BLOCK[group[3]]}"
        elif module in _OFFICIAL_TOP:
            new = _OFFICIAL_TOP[module]
        else:
            raise ValueError(f"{key!r} is not a weight of the official FFA-Net")
        out[f"{new}.{param}"] = value
    return out
