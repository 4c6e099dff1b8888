"""Checks the commands make before anything trains or samples: output paths, run directories, devices.

Each refuses in one line that names the flag and the fix. torch is imported inside the functions
that need it, so the parsers stay light.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

#: what ``fit`` writes into its ``--out``: a directory holding any of these holds a run
RUN_ENTRIES = ("checkpoints", "generator", "logs", "samples", "samples.png")


def output_path(path: str | os.PathLike, flag: str, *, suffix: str | None = None) -> Path:
    """``path`` for a file or folder that a command writes; its missing parent folders are created only nearby.

    A missing folder is created when it lies inside the current directory or directly inside an
    existing folder; anything else (``/missing/dir/x.png``) is refused rather than built from the
    filesystem root. ``suffix``: the file must end in it (numpy would silently add ``.npz``).
    """
    path = Path(path)
    if suffix is not None and path.suffix.lower() != suffix:
        raise ValueError(f"{flag} {path}: the file name must end in {suffix}; give {flag} {path.with_suffix(suffix)}")
    if path.exists() and path.is_dir() != (suffix is None):
        kind = "a folder" if path.is_dir() else "a file"
        raise ValueError(f"{flag} {path} is {kind}; give a {'file' if suffix else 'folder'} path")
    parent = path.parent
    if parent.is_dir():
        return path
    if parent.exists():
        raise ValueError(f"{flag} {path}: {parent} is a file, not a folder")
    inside_cwd = Path.cwd().resolve() in parent.resolve().parents
    if not inside_cwd and not parent.parent.is_dir():
        raise ValueError(f"{flag} {path}: the folder {parent} does not exist and neither does {parent.parent}; create it first")
    parent.mkdir(parents=True, exist_ok=True)
    return path


def generator_dir(path: str | os.PathLike, flag: str = "GENERATOR") -> Path:
    """A saved generator's directory; a training checkpoint or one file of a save is refused with the right path."""
    path = Path(path)
    if path.is_file() and path.suffix == ".ckpt":
        raise ValueError(f"{path} is a Lightning training checkpoint, not a saved generator: give {flag} the directory "
                         f"fit saved ({path.parent.parent / 'generator'}), or continue training with "
                         f"synthaug fit ... --resume {path}")  # fmt: skip
    if path.is_file() and path.name in ("config.json", "model.safetensors"):
        raise ValueError(f"{path} is one file of a saved generator: give {flag} its directory, {path.parent}")
    return path


def check_run_dir(out: str | os.PathLike, *, resume: str | None, overwrite: bool) -> Path:
    """``fit --out``: refuse a directory that holds a run unless resuming it or asked to overwrite it."""
    out = output_path(out, "--out")
    found = [name for name in RUN_ENTRIES if (out / name).exists()]
    if not found:
        return out
    if resume is not None and overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite deletes it: give one of them")
    if resume is not None:
        return out
    if not overwrite:
        raise ValueError(f"--out {out} already holds a run ({', '.join(found)}); continue it with --resume last, "
                         "replace it with --overwrite, or give another --out")  # fmt: skip
    for name in found:
        target = out / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return out


def check_accelerator(accelerator: str, devices: int | str) -> None:
    """Refuse an accelerator this machine lacks, in one line, before Lightning explains it in thirty."""
    import torch

    name = accelerator.lower()
    if name in ("gpu", "cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--accelerator {accelerator}: torch sees no CUDA GPU on this machine; "
                             "use --accelerator cpu (or auto, which takes a GPU when there is one)")  # fmt: skip
        if isinstance(devices, int) and devices > count:
            raise ValueError(f"--devices {devices}: this machine has {count} CUDA GPU(s); use --devices {count} or fewer")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--accelerator {accelerator}: Apple's MPS is not available here; use --accelerator cpu or auto")


def sample_device(accelerator: str, devices: int | str, device: str | None) -> tuple[str, str, int | str]:
    """``(torch device, accelerator, devices)`` of ``sample``; ``device`` is the deprecated ``--device``."""
    import torch

    if device is not None:
        warnings.warn("sample --device is deprecated and will be removed in 0.3; use --accelerator and --devices "
                      "(as in fit), e.g. --accelerator gpu --devices 1", FutureWarning, stacklevel=2)  # fmt: skip
        kind, _, index = device.partition(":")
        if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()):
            raise ValueError(f"--device must be cpu, cuda, cuda:N or mps, got {device!r}; better: --accelerator cpu|gpu")
        accelerator = {"cpu": "cpu", "cuda": "gpu", "mps": "mps"}[kind]
        devices = f"{index}," if index else 1
    check_accelerator(accelerator, devices)
    name = accelerator.lower()
    if name == "auto":
        name = "gpu" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if name == "cpu":
        return "cpu", "cpu", 1 if devices == "auto" else devices
    if name == "mps":
        return "mps", "mps", 1
    if name not in ("gpu", "cuda"):
        raise ValueError(f"--accelerator must be cpu, gpu, mps or auto for sample, got {accelerator!r}")
    first = int(devices.split(",")[0]) if isinstance(devices, str) and devices != "auto" else 0
    return f"cuda:{first}", "gpu", 1 if devices == "auto" else devices
