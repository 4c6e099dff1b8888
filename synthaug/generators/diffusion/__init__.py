"""Diffusion parts kept apart, diffusers style: the noise schedule, the UNet, and one file per sampler."""

from synthaug.generators.diffusion.samplers import SAMPLERS, Sampler
from synthaug.generators.diffusion.schedule import NoiseSchedule
from synthaug.generators.diffusion.unet import ConditionalUNet

__all__ = ["SAMPLERS", "ConditionalUNet", "NoiseSchedule", "Sampler"]
