"""How the convolutional families fit their feature maps to an image size."""

from __future__ import annotations


def num_halvings(height: int, width: int) -> int:
    """How many times a ``height x width`` map can be halved while both sides stay even and at least 8.

    28x28 -> 14x14 -> 7x7 (2), 64x64 -> ... -> 4x4 (4), 8x8 -> 4x4 (1), 12x20 -> 6x10 (1). The VAE's
    encoder and the GAN's networks halve this many times, and their decoders double as many times,
    so every supported size round-trips exactly.
    """
    n = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) >= 8:
        height, width, n = height // 2, width // 2, n + 1
    return n
