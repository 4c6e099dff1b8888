"""Class-conditional generator families behind one interface, in a plain dict registry."""

from synthaug.generators.base import GENERATORS, ConditionalGenerator, GeneratorConfig, create, get_family, register
from synthaug.generators.vae import ConditionalVAE, VAEConfig

__all__ = [
    "GENERATORS",
    "ConditionalGenerator",
    "ConditionalVAE",
    "GeneratorConfig",
    "VAEConfig",
    "create",
    "get_family",
    "register",
]
