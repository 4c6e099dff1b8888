"""``synthaug fit`` and ``synthaug sample``: train a generator, then draw from it."""

from __future__ import annotations

import argparse

from synthaug.cli.checks import check_accelerator, check_run_dir, generator_dir, output_path, sample_device
from synthaug.cli.common import BUILTIN_DATA, SPLIT_HELP, SPLITS, family_options_help, load_data, parse_options
from synthaug.cli.parsing import (
    LazyChoices,
    RawDefaultsFormatter,
    add_device_arguments,
    non_negative_int,
    open_share,
    positive_float,
    positive_int,
)


def _families() -> list[str]:
    from synthaug.generators import GENERATORS

    return list(GENERATORS)


def _methods() -> tuple[str, ...]:
    from synthaug.compress import METHODS

    return METHODS


def _steps_help() -> str:
    from synthaug.generators import GENERATORS

    steps = ", ".join(f"{name} {cls.default_steps}" for name, cls in sorted(GENERATORS.items()))
    return f"optimiser steps (default: the family's default_steps: {steps})"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    families = LazyChoices(_families)
    p = sub.add_parser("fit", help="train a generator on a dataset and save it", formatter_class=RawDefaultsFormatter,
                       description="Train a class-conditional generator with Lightning and save it to OUT/generator.",
                       epilog=lambda: family_options_help() + "\n\nexample: synthaug fit --data fashion-mnist --per-class 60 "
                                      "--family ddpm --out runs/fm")  # fmt: skip
    p.add_argument("--data", required=True, help=f"{' | '.join(BUILTIN_DATA)} | PATH of an image folder (one sub-folder per class)")
    p.add_argument("--split", default="train", choices=SPLITS, help=SPLIT_HELP)
    p.add_argument("--root", help="folder with the Fashion-MNIST IDX files (default: $SYNTHAUG_FASHION_MNIST or Debian's location)")
    p.add_argument("--resize", type=positive_int, help="resize image-folder images to SIZE x SIZE (default: as stored)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="convert image-folder images to 1 (gray) or 3 (RGB) channels (default: as stored)")
    p.add_argument("--per-class", type=positive_int, help="train on a stratified subset of K images per class (default: all images)")
    p.add_argument("--subset-seed", type=non_negative_int, default=0, help="seed of that subset")
    p.add_argument("--family", default="vae", choices=families, metavar="FAMILY", help="generator family: %(choices)s")
    p.add_argument("--generator", dest="family", choices=families, metavar="FAMILY", help=argparse.SUPPRESS)  # before 0.2
    p.add_argument("--out", default="synthaug-run",
                   help="run directory; one that holds a run is refused unless --resume or --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace the run that --out holds (its checkpoints, logs, generator)")
    p.add_argument("--max-steps", type=positive_int, default=None, help=_steps_help)
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per batch")
    p.add_argument("--lr", type=positive_float, help="learning rate (default: the family's)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the weights, the batches and the noise")
    add_device_arguments(p)
    p.add_argument("--strategy", default="auto", help="ddp | ddp_spawn | fsdp | auto ... (Lightning)")
    p.add_argument("--precision", help="e.g. bf16-mixed (Lightning; default: 32-true)")
    p.add_argument("--num-workers", type=non_negative_int, default=0, help="DataLoader workers")
    p.add_argument("--resume", metavar="CKPT",
                   help="Lightning checkpoint to resume from, or 'last' for OUT/checkpoints/last.ckpt (default: train from scratch)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyper-parameter of the family, e.g. --set latent_dim=16 (repeatable; listed below)")  # fmt: skip
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress display")
    p.set_defaults(func=run_fit)

    s = sub.add_parser("sample", help="sample a saved generator to a PNG grid, an .npz and/or a bank",
                       formatter_class=RawDefaultsFormatter,
                       description="Sample a saved generator: one grid row per class, an .npz with uint8 "
                                   "images (N, C, H, W), labels and class_names, and/or a SyntheticBank.",
                       epilog="example: synthaug sample runs/fm/generator --per-class 500 --bank banks/fm "
                              "--set-sample steps=20 guidance=1.5")  # fmt: skip
    s.add_argument("generator", help="directory written by fit (OUT/generator)")
    s.add_argument("--per-class", type=positive_int, default=8, help="samples per class")
    s.add_argument("--classes", type=non_negative_int, nargs="+", help="class indices to sample (default: all)")
    s.add_argument("--png", help="write a grid image here (a .png path; default: none)")
    s.add_argument("--npz", help="write the samples here (a .npz path, used as given; default: none)")
    s.add_argument("--bank", metavar="DIR", help="write a SyntheticBank (sharded, memory-mapped) here (default: none)")
    s.add_argument("--seed", type=non_negative_int, default=0, help="seed of the samples")
    s.add_argument("--set-sample", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="sampling options of the family, e.g. --set-sample steps=20 guidance=1.5 (ddpm) or "
                        "temperature=0.8 (vae); recorded in a bank's manifest (default: the family's sample_defaults)")  # fmt: skip
    add_device_arguments(s)
    s.add_argument("--device", help="deprecated: use --accelerator and --devices (default: unset)")
    s.set_defaults(func=run_sample)

    c = sub.add_parser("compress", help="prune and/or step-distill a saved ddpm so that it samples faster",
                       formatter_class=RawDefaultsFormatter,
                       description="Structured pruning (a share of every residual block's inner channels removed, then a "
                                   "short fine-tune on the generator's training images) and step distillation (a student "
                                   "that samples in 1-4 steps). The result is an ordinary saved generator.",
                       epilog="example: synthaug compress runs/fm60/generator --data fashion-mnist --per-class 60 "
                              "--method prune+distill --out runs/fm60-fast")  # fmt: skip
    c.add_argument("generator", help="directory written by fit (OUT/generator); a ddpm")
    c.add_argument("--method", default="prune+distill", choices=LazyChoices(_methods), metavar="METHOD",
                   help="prune | distill | prune+distill")  # listed here: importing compress would import Lightning
    c.add_argument("--ratio", type=open_share, default=0.5, help="share of inner channels removed, in (0, 1)")
    c.add_argument("--prune-steps", type=positive_int, default=1000, help="fine-tuning steps after pruning")
    c.add_argument("--student-steps", type=positive_int, default=2, choices=(1, 2, 3, 4), metavar="{1,2,3,4}",
                   help="sampling steps of the distilled model")  # fmt: skip
    c.add_argument("--distill-steps", type=positive_int, default=1000, help="distillation training steps")
    c.add_argument("--data", help=f"{' | '.join(BUILTIN_DATA)} | PATH: the generator's training data (pruning needs it; default: none)")
    c.add_argument("--root", help="folder with the Fashion-MNIST IDX files (default: $SYNTHAUG_FASHION_MNIST or Debian's location)")
    c.add_argument("--per-class", type=positive_int, help="the stratified subset the generator was trained on, as in fit (default: all of --data)")
    c.add_argument("--subset-seed", type=non_negative_int, default=0, help="seed of that subset")
    c.add_argument("--seed", type=non_negative_int, default=0, help="seed of the fine-tuning and distillation")
    c.add_argument("--out", default="synthaug-compressed", help="output directory")
    c.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress display")
    c.set_defaults(func=run_compress)


def run_fit(args: argparse.Namespace) -> int:
    from synthaug.training import fit

    out = check_run_dir(args.out, resume=args.resume, overwrite=args.overwrite)
    check_accelerator(args.accelerator, args.devices)
    data = load_data(args.data, split=args.split, root=args.root, resize=args.resize, channels=args.channels)
    if args.per_class is not None:
        data = data.subset(args.per_class, seed=args.subset_seed)
    fit(data, args.family, out=out, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        accelerator=args.accelerator, devices=args.devices, strategy=args.strategy, precision=args.precision,
        ckpt_path=args.resume, num_workers=args.num_workers, enable_progress_bar=args.progress, **parse_options(args.set))  # fmt: skip
    print(f"trained {args.family} on {data} (--split {args.split} of {args.data})\nsaved to {out / 'generator'}; sample grid at {out / 'samples.png'}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from synthaug.bank import SyntheticBank
    from synthaug.generators.base import sample_uint8
    from synthaug.io import load
    from synthaug.seeding import torch_generator
    from synthaug.visualize import save_image_grid

    if not (args.png or args.npz or args.bank):
        raise ValueError("nothing to write: give --png PATH, --npz PATH and/or --bank DIR")
    png = output_path(args.png, "--png", suffix=".png") if args.png else None
    npz = output_path(args.npz, "--npz", suffix=".npz") if args.npz else None
    bank_dir = output_path(args.bank, "--bank") if args.bank else None
    device, accelerator, devices = sample_device(args.accelerator, args.devices, args.device)
    generator = load(generator_dir(args.generator), map_location=device)
    options = generator.check_sample_options(parse_options(args.set_sample, "--set-sample"))
    classes = list(range(generator.num_classes)) if args.classes is None else args.classes
    labels = generator.check_labels(classes).cpu().repeat_interleave(args.per_class)
    if png or npz:
        images = sample_uint8(generator, labels, generator=torch_generator(args.seed), **options)
    if png:
        save_image_grid(images, png, nrow=args.per_class)
        print(f"wrote a grid of {len(images)} samples ({len(classes)} classes x {args.per_class}) to {png}")
    if npz:
        np.savez_compressed(npz, images=images.numpy(), labels=labels.numpy(), class_names=np.array(generator.class_names))
        print(f"wrote {len(images)} uint8 images (N, C, H, W) and labels to {npz}")
    if bank_dir:
        bank = SyntheticBank.generate(generator, path=bank_dir, counts={c: args.per_class for c in classes}, seed=args.seed,
                                      sample_options=options, accelerator=accelerator, devices=devices)  # fmt: skip
        print(f"wrote a bank of {len(bank)} samples to {bank_dir} (resumable: rerun the same command after a crash)")
    return 0


def run_compress(args: argparse.Namespace) -> int:
    from synthaug.compress import compress, parameters
    from synthaug.io import load

    out = output_path(args.out, "--out")
    data = None
    if args.data:
        data = load_data(args.data, root=args.root)
        data = data.subset(args.per_class, seed=args.subset_seed) if args.per_class is not None else data
    elif args.method != "distill":
        raise ValueError(f"--method {args.method} fine-tunes on the generator's training images: give --data "
                         "(and --per-class as in fit), or use --method distill")  # fmt: skip
    original = load(generator_dir(args.generator))
    result = compress(original, data, method=args.method, ratio=args.ratio, prune_steps=args.prune_steps,
                      student_steps=args.student_steps, distill_steps=args.distill_steps, out=out, seed=args.seed,
                      enable_progress_bar=args.progress)  # fmt: skip
    print(f"{args.method}: {parameters(original):,} -> {parameters(result):,} parameters, {original.config.steps} -> "
          f"{result.config.steps} sampling steps; saved to {out / 'generator'}")
    return 0
