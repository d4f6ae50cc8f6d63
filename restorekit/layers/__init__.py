"""Shared layers of the restoration models: attention, window attention, conv blocks.

Import direction: layers import only torch (DESIGN.md); models are built from them.
"""

from restorekit.layers.attention import (
    SCSE,
    AttentionGate,
    ChannelAttention,
    EfficientAttention,
    PixelAttention,
    ProgressiveAttentionRefinement,
)
from restorekit.layers.blocks import AHPF, RDB, ConvBlock, ResBlock, Upsampler
from restorekit.layers.window import (
    SwinBlock,
    WindowAttention,
    deepnorm_constants,
    deepnorm_init_,
    window_attention_mask,
    window_partition,
    window_reverse,
)

__all__ = [
    "AHPF",
    "RDB",
    "SCSE",
    "AttentionGate",
    "ChannelAttention",
    "ConvBlock",
    "EfficientAttention",
    "PixelAttention",
    "ProgressiveAttentionRefinement",
    "ResBlock",
    "SwinBlock",
    "Upsampler",
    "WindowAttention",
    "deepnorm_constants",
    "deepnorm_init_",
    "window_attention_mask",
    "window_partition",
    "window_reverse",
]
