"""Class-conditional generator families behind one interface, in a plain dict registry."""

from synthaug.generators.ar import ARConfig, ConditionalPixelCNN
from synthaug.generators.base import (
    GENERATORS,
    ConditionalGenerator,
    GeneratorConfig,
    create,
    get_family,
    register,
    sample_uint8,
)
from synthaug.generators.ddpm import ConditionalDDPM, DDPMConfig
from synthaug.generators.gan import ConditionalGAN, GANConfig
from synthaug.generators.vae import ConditionalVAE, VAEConfig

__all__ = [
    "GENERATORS",
    "ARConfig",
    "ConditionalPixelCNN",
    "ConditionalDDPM",
    "ConditionalGAN",
    "ConditionalGenerator",
    "ConditionalVAE",
    "DDPMConfig",
    "GANConfig",
    "GeneratorConfig",
    "VAEConfig",
    "create",
    "get_family",
    "register",
    "sample_uint8",
]
