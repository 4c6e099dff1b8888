"""``synthaug fit`` and ``synthaug sample``: train a generator, then draw from it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from synthaug.bank import SyntheticBank
from synthaug.cli.common import BUILTIN_DATA, family_options_help, load_data, parse_options
from synthaug.compress import METHODS, compress, parameters
from synthaug.generators import GENERATORS
from synthaug.generators.base import sample_uint8
from synthaug.io import load
from synthaug.seeding import torch_generator
from synthaug.training import fit
from synthaug.visualize import save_image_grid


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="train a generator on a dataset and save it", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a class-conditional generator with Lightning and save it to OUT/generator.",
                       epilog=family_options_help() + "\n\nexample: synthaug fit --data fashion-mnist --per-class 60 "
                              "--family ddpm --out runs/fm")  # fmt: skip
    p.add_argument("--data", required=True, help=f"{' | '.join(BUILTIN_DATA)} | PATH of an image folder (one sub-folder per class)")
    p.add_argument("--split", default="train", choices=("train", "test"), help="split of a built-in dataset")
    p.add_argument("--root", help="folder with the Fashion-MNIST IDX files (default: Debian's location)")
    p.add_argument("--resize", type=int, help="resize image-folder images to SIZE x SIZE")
    p.add_argument("--per-class", type=int, help="train on a stratified subset of K images per class")
    p.add_argument("--subset-seed", type=int, default=0, help="seed of that subset (default: %(default)s)")
    p.add_argument("--family", default="vae", choices=sorted(GENERATORS), help="generator family (default: %(default)s)")
    p.add_argument("--generator", dest="family", choices=sorted(GENERATORS), help=argparse.SUPPRESS)  # before 0.2
    p.add_argument("--out", default="synthaug-run", help="run directory (default: %(default)s)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="optimiser steps (default: the family's default_steps: vae 2000, gan 6000, ddpm 6000)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, help="learning rate (default: the family's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--accelerator", default="auto", help="cpu | gpu | auto ... (Lightning)")
    p.add_argument("--devices", default="auto", help="number of devices or 'auto' (Lightning)")
    p.add_argument("--strategy", default="auto", help="ddp | ddp_spawn | fsdp | auto ... (Lightning)")
    p.add_argument("--precision", help="e.g. bf16-mixed (Lightning)")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--resume", metavar="CKPT", help="Lightning checkpoint to resume from, or 'last'")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyper-parameter of the family, e.g. --set latent_dim=16 (repeatable; listed below)")  # fmt: skip
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress display")
    p.set_defaults(func=run_fit)

    s = sub.add_parser("sample", help="sample a saved generator to a PNG grid, an .npz and/or a bank",
                       description="Sample a saved generator: one grid row per class, an .npz with uint8 "
                                   "images (N, C, H, W), labels and class_names, and/or a SyntheticBank.",
                       epilog="example: synthaug sample runs/fm/generator --per-class 500 --bank banks/fm "
                              "--set-sample steps=20 guidance=1.5")  # fmt: skip
    s.add_argument("generator", help="directory written by fit (OUT/generator)")
    s.add_argument("--per-class", type=int, default=8, help="samples per class (default: %(default)s)")
    s.add_argument("--classes", type=int, nargs="+", help="class indices to sample (default: all)")
    s.add_argument("--png", help="write a grid image here")
    s.add_argument("--npz", help="write the samples here")
    s.add_argument("--bank", metavar="DIR", help="write a SyntheticBank (sharded, memory-mapped) here")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--set-sample", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="sampling options of the family, e.g. --set-sample steps=20 guidance=1.5 (ddpm) or "
                        "temperature=0.8 (vae); recorded in a bank's manifest")  # fmt: skip
    s.add_argument("--device", default="cpu", help="torch device to sample on (default: %(default)s)")
    s.set_defaults(func=run_sample)

    c = sub.add_parser("compress", help="prune and/or step-distill a saved ddpm so that it samples faster",
                       description="Structured pruning (a share of every residual block's inner channels removed, then a "
                                   "short fine-tune on the generator's training images) and step distillation (a student "
                                   "that samples in 1-4 steps). The result is an ordinary saved generator.",
                       epilog="example: synthaug compress runs/fm60/generator --data fashion-mnist --per-class 60 "
                              "--method prune+distill --out runs/fm60-fast")  # fmt: skip
    c.add_argument("generator", help="directory written by fit (OUT/generator); a ddpm")
    c.add_argument("--method", default="prune+distill", choices=METHODS)
    c.add_argument("--ratio", type=float, default=0.5, help="share of inner channels removed (default: %(default)s)")
    c.add_argument("--prune-steps", type=int, default=1000, help="fine-tuning steps after pruning")
    c.add_argument("--student-steps", type=int, default=2, help="sampling steps of the distilled model (1-4)")
    c.add_argument("--distill-steps", type=int, default=1000, help="distillation training steps")
    c.add_argument("--data", help=f"{' | '.join(BUILTIN_DATA)} | PATH: the generator's training data (pruning needs it)")
    c.add_argument("--root", help="folder with the Fashion-MNIST IDX files (default: Debian's location)")
    c.add_argument("--per-class", type=int, help="the stratified subset the generator was trained on (as in fit)")
    c.add_argument("--subset-seed", type=int, default=0)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default="synthaug-compressed", help="output directory (default: %(default)s)")
    c.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress display")
    c.set_defaults(func=run_compress)


def run_fit(args: argparse.Namespace) -> int:
    data = load_data(args.data, split=args.split, root=args.root, resize=args.resize)
    if args.per_class:
        data = data.subset(args.per_class, seed=args.subset_seed)
    devices: Any = int(args.devices) if args.devices.isdigit() else args.devices
    fit(data, args.family, out=args.out, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        accelerator=args.accelerator, devices=devices, strategy=args.strategy, precision=args.precision,
        ckpt_path=args.resume, num_workers=args.num_workers, progress_bar=args.progress, **parse_options(args.set))  # fmt: skip
    print(f"trained {args.family} on {data}\nsaved to {Path(args.out) / 'generator'}; sample grid at {Path(args.out) / 'samples.png'}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    if not (args.png or args.npz or args.bank):
        raise ValueError("nothing to write: give --png PATH, --npz PATH and/or --bank DIR")
    if args.per_class < 1:
        raise ValueError(f"--per-class must be >= 1, got {args.per_class}")
    generator = load(args.generator, map_location=args.device)
    options = generator.check_sample_options(parse_options(args.set_sample, "--set-sample"))
    classes = list(range(generator.num_classes)) if args.classes is None else args.classes
    labels = generator.check_labels(classes).cpu().repeat_interleave(args.per_class)
    if args.png or args.npz:
        images = sample_uint8(generator, labels, generator=torch_generator(args.seed), **options)
    if args.png:
        save_image_grid(images, args.png, nrow=args.per_class)
        print(f"wrote a grid of {len(images)} samples ({len(classes)} classes x {args.per_class}) to {args.png}")
    if args.npz:
        Path(args.npz).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.npz, images=images.numpy(), labels=labels.numpy(), class_names=np.array(generator.class_names))
        print(f"wrote {len(images)} uint8 images (N, C, H, W) and labels to {args.npz}")
    if args.bank:
        bank = SyntheticBank.generate(generator, path=args.bank, counts={c: args.per_class for c in classes}, seed=args.seed,
                                      sample_options=options, accelerator=args.device.split(":")[0])  # fmt: skip
        print(f"wrote a bank of {len(bank)} samples to {args.bank} (resumable: rerun the same command after a crash)")
    return 0


def run_compress(args: argparse.Namespace) -> int:
    data = None
    if args.data:
        data = load_data(args.data, root=args.root)
        data = data.subset(args.per_class, seed=args.subset_seed) if args.per_class else data
    original = load(args.generator)
    result = compress(original, data, method=args.method, ratio=args.ratio, prune_steps=args.prune_steps,
                      student_steps=args.student_steps, distill_steps=args.distill_steps, out=args.out, seed=args.seed,
                      progress_bar=args.progress)  # fmt: skip
    print(f"{args.method}: {parameters(original):,} -> {parameters(result):,} parameters, {original.config.steps} -> "
          f"{result.config.steps} sampling steps; saved to {Path(args.out) / 'generator'}")
    return 0
