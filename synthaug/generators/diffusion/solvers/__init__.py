"""Diffusion solvers (the `sampler=` option of ddpm sampling), one file each, kept apart from the network and the schedule."""

from synthaug.generators.diffusion.solvers.base import Solver
from synthaug.generators.diffusion.solvers.ddim import DDIMSolver
from synthaug.generators.diffusion.solvers.ddpm import DDPMSolver
from synthaug.generators.diffusion.solvers.dpm_solver import DPMSolverPP2M

SOLVERS: dict[str, type[Solver]] = {"ddpm": DDPMSolver, "ddim": DDIMSolver, "dpm++2m": DPMSolverPP2M}

__all__ = ["SOLVERS", "DDIMSolver", "DDPMSolver", "DPMSolverPP2M", "Solver"]
