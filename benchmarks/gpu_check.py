"""A few-minute check of the GPU paths, each with its throughput (issue 21, item 6).

    python benchmarks/gpu_check.py                        # on a GPU: the large ddpm, a few minutes
    python benchmarks/gpu_check.py --tiny --device cpu    # the same four checks in seconds (the CI test runs this)

1. Training: the ddpm of ``--size`` (default ``large``) for ``--steps`` with ``precision="bf16-mixed"``
   (images/s over the steps after the first, so start-up is not counted).
2. Sampling: ``generator.sample`` with a ``torch.Generator`` on the model's device (images/s); the same
   seed must give the same images twice.
3. A bank on one device: ``SyntheticBank.generate(..., devices=1)`` (images/s, start-up included).
4. Live mixing: ``SyntheticAugment`` over the live generator in a DataLoader with ``--workers`` workers
   (``spawn`` when the generator is on a GPU: CUDA does not survive ``fork``), items/s.

The data are the scikit-learn digits, resized to 28x28 (the Fashion-MNIST shape) unless ``--tiny``
(8x8 and a tiny network): the check is about devices and speed, not quality. Results are printed as a
table and written to ``--out/gpu_check.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import synthaug
from synthaug import SyntheticAugment, SyntheticBank
from synthaug.data import LabeledImages, load_digits
from synthaug.seeding import torch_generator

TINY = {"base_channels": 8, "channel_mults": (1, 2), "timesteps": 50, "steps": 4, "dropout": 0.0}


class _Clock(L.Callback):
    """Wall time from the end of the first training batch to the end of the last."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.batches = 0

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.first = now if self.first is None else self.first
        self.last, self.batches = now, self.batches + 1


def _data(tiny: bool) -> LabeledImages:
    digits = load_digits()
    if tiny:
        return digits.subset(10, seed=0)
    images = F.interpolate(digits.images.float(), size=(28, 28), mode="bilinear", align_corners=False)
    return LabeledImages(images.round().clamp(0, 255).to(torch.uint8), digits.labels, digits.class_names)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)  # fmt: skip
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    out = Path(args.out)
    data = _data(args.tiny)
    options = {**(TINY if args.tiny else {"size": args.size}), "parameterization": args.parameterization}
    results: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
                               or "cpu", "torch": torch.__version__, "options": options, "image_shape": data.image_shape}  # fmt: skip

    clock = _Clock()
    generator = synthaug.fit(data, "ddpm", out=out / "run", max_steps=args.steps, batch_size=args.batch_size,
                             precision=args.precision, accelerator=accelerator, devices=1, enable_progress_bar=False, logger=False,
                             trainer_kwargs={"callbacks": [clock]}, **options).to(device)  # fmt: skip
    timed = max(clock.batches - 1, 1)
    results["train"] = {"steps": clock.batches, "precision": args.precision, "images_per_s": timed * args.batch_size
                        / max((clock.last or 0) - (clock.first or 0), 1e-9),
                        "parameters": sum(p.numel() for p in generator.unet.parameters())}  # fmt: skip

    labels = torch.arange(args.sample_batch) % generator.num_classes
    generator.sample(labels[:8], generator=torch_generator(0, device=device))  # warm-up
    _sync(device)
    start = time.perf_counter()
    first = generator.sample(labels, generator=torch_generator(1, device=device))
    _sync(device)
    seconds = time.perf_counter() - start
    again = generator.sample(labels, generator=torch_generator(1, device=device))
    if first.device != device or not torch.equal(first, again):
        raise RuntimeError(f"sampling with a {device.type} torch.Generator is not reproducible on {first.device}")
    results["sample"] = {"generator_device": device.type, "images_per_s": len(labels) / seconds}

    start = time.perf_counter()
    bank = SyntheticBank.generate(generator, path=out / "bank", per_class=args.bank_per_class, seed=0,
                                  accelerator=accelerator, devices=1, batch_size=args.sample_batch)  # fmt: skip
    results["bank"] = {"images": len(bank), "images_per_s": len(bank) / (time.perf_counter() - start)}

    augmented = SyntheticAugment(data, generator, ratio=0.5, seed=0)
    context = "spawn" if device.type == "cuda" and args.workers else None
    loader = DataLoader(augmented, batch_size=args.loader_batch, sampler=augmented.sampler(seed=0), num_workers=args.workers,
                        multiprocessing_context=context)  # fmt: skip
    start, items = time.perf_counter(), 0
    for batch, (_images, targets) in enumerate(loader):
        items += len(targets)
        if batch + 1 >= args.loader_batches:
            break
    results["live"] = {"workers": args.workers, "context": context or "default", "items": items,
                       "items_per_s": items / (time.perf_counter() - start)}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda[:N]")
    parser.add_argument("--tiny", action="store_true", help="8x8 digits and a tiny network: seconds on a CPU")
    parser.add_argument("--size", default="large", choices=["small", "base", "large"])
    parser.add_argument("--parameterization", default="vp", choices=["vp", "edm"])
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: 300, tiny 4)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 256, tiny 25")
    parser.add_argument("--sample-batch", type=int, default=None, help="default: 1000, tiny 20")
    parser.add_argument("--bank-per-class", type=int, default=None, help="default: 500, tiny 3")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--loader-batch", type=int, default=None, help="default: 256, tiny 16")
    parser.add_argument("--loader-batches", type=int, default=None, help="default: 20, tiny 3")
    parser.add_argument("--out", default="runs/benchmarks/gpu_check")
    args = parser.parse_args(argv)
    defaults = {"steps": (300, 4), "batch_size": (256, 25), "sample_batch": (1000, 20), "bank_per_class": (500, 3),
                "loader_batch": (256, 16), "loader_batches": (20, 3)}  # fmt: skip
    for name, (full, tiny) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, tiny if args.tiny else full)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    results = run(parse_args(argv))
    train = results["train"]
    print(f"\n{results['device']}, torch {results['torch']}, ddpm {results['options']}, images {results['image_shape']}\n")
    print("| check | what | throughput |")
    print("|---|---|---:|")
    print(f"| train | {train['parameters'] / 1e6:.2f}M parameters, {train['steps']} steps, {train['precision']} | "
          f"{train['images_per_s']:,.0f} images/s |")  # fmt: skip
    print(f"| sample | torch.Generator on {results['sample']['generator_device']} | {results['sample']['images_per_s']:,.0f} images/s |")
    print(f"| bank | {results['bank']['images']:,} images, one device | {results['bank']['images_per_s']:,.0f} images/s |")
    live = results["live"]
    print(f"| live mixing | {live['workers']} workers ({live['context']}) | {live['items_per_s']:,.0f} items/s |")
    return results


if __name__ == "__main__":
    main()
