"""Samplers, one file each, kept apart from the network and the schedule."""

from synthaug.generators.diffusion.samplers.base import Sampler
from synthaug.generators.diffusion.samplers.ddim import DDIMSampler
from synthaug.generators.diffusion.samplers.ddpm import DDPMSampler
from synthaug.generators.diffusion.samplers.dpm_solver import DPMSolverPP2MSampler

SAMPLERS: dict[str, type[Sampler]] = {"ddpm": DDPMSampler, "ddim": DDIMSampler, "dpm++2m": DPMSolverPP2MSampler}

__all__ = ["SAMPLERS", "DDIMSampler", "DDPMSampler", "DPMSolverPP2MSampler", "Sampler"]
