"""Quality of generators trained on a few Fashion-MNIST images per class, and the ddpm sampler sweep.

    python benchmarks/generator_quality.py                        # train what is missing, then the tables
    python benchmarks/generator_quality.py --families vae gan ddpm ar --steps ar=20000 --compress prune distill prune+distill --sweep
    python benchmarks/generator_quality.py --stage train --families gan --threads 2   # one family, e.g. in the background
    python benchmarks/generator_quality.py --families ddpm "ddpm-minsnr=ddpm:loss_weighting=min-snr,ema_warmup=true" \\
        --max-steps 3000 --out runs/benchmarks/ddpm-recipe      # an A/B of training recipes at equal steps

A family spec is ``FAMILY`` (its defaults) or ``NAME=FAMILY:KEY=VALUE,KEY=VALUE`` (hyper-parameters
given; values are read as JSON). Each trains with ``synthaug.fit`` on the same stratified subset
(``--per-class`` images of each class, subset seed 0) for its default number of steps (or
``--max-steps``) or ``--budget-minutes`` of wall time, whichever comes first. Train one
generator at a time: two torch jobs on two cores slow each other many times over. Everything is
cached under ``--out`` and reused, so a rerun only computes what is missing; an interrupted training
resumes from its last checkpoint (its time budget resumes with it).

Quality: a bank of ``--samples-per-class`` images per class against the 10,000 Fashion-MNIST test
images, through ``synthaug.evaluate`` (features of the cached domain classifier trained on the
60,000 training images): FID, KID, precision / recall (k=3), density / coverage (k=5), CAS (train
on synthetic, test on real; its real baseline trains on the generator's own training images), the
near-copy share, and the within-class spread (mean per-pixel standard deviation of each class's
samples, next to the real test images' value). Throughput: ``generator.sample`` on batches of
``--batch`` labels, median of 5 timed runs, measured afresh each time the table is printed (the
quality figures are cached, timings are not), so run the final, all-cached invocation on a quiet
machine.

Quality against minutes (``--curve-minutes 5 10 15 30``): each spec trains as one run, stopped at
each mark and resumed from its ``last.ckpt`` towards the next (the optimiser's learning rate is
constant and the Timer's elapsed time resumes with the checkpoint, so the stages are one run); the
generator at each mark is copied to ``NAME/curve/Mmin`` and evaluated like a row of the table.
Without ``--max-steps`` the curve runs have no step limit: time alone ends each stage.

Sampler sweep (ddpm, with ``--sweep``): ``--sweep-per-class`` images per class for each (sampler,
steps), FID against the test set, and images/s (median of 3); and the guidance sweep, with CAS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import torch

import synthaug
from synthaug.bank import SyntheticBank
from synthaug.classifier import accuracy, train_classifier
from synthaug.compress import METHODS, compress, parameters
from synthaug.data import LabeledImages, load_fashion_mnist
from synthaug.evaluation import evaluate
from synthaug.evaluation.report import feature_metrics
from synthaug.generators.base import sample_uint8
from synthaug.metrics.features import domain_classifier
from synthaug.seeding import torch_generator
from synthaug.training import describe_stale, stale_options
from synthaug.visualize import class_grid, save_image_grid

SWEEP = [("dpm++2m", 10), ("dpm++2m", 20), ("dpm++2m", 50), ("dpm++2m", 250), ("ddim", 10), ("ddim", 20)]
GUIDANCE = [1.0, 1.5, 2.0, 3.0]


def parse_spec(spec: str) -> tuple[str, str, dict]:
    """``(name, family, options)`` from ``FAMILY`` or ``NAME=FAMILY:KEY=VALUE,...``."""
    name, _, rest = spec.partition("=") if "=" in spec.split(":")[0] else (spec, "", spec)
    family, _, pairs = rest.partition(":")
    options = {}
    for pair in filter(None, pairs.split(",")):
        key, _, value = pair.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return name, family, options


def cached(path: Path, compute) -> dict:
    """``compute()``'s JSON-able result, stored at ``path`` and read back on later runs."""
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return result


def timed_fit(family: str, options: dict, data: LabeledImages, run: Path, max_steps: int | None, minutes: float,
              **fit_options) -> dict:
    """``synthaug.fit`` in ``run`` (resumed from its ``last.ckpt``) for ``max_steps`` or until ``minutes`` of training
    in all; its steps and training seconds as the checkpoint's Timer counted them (a resume included)."""
    last = run / "checkpoints" / "last.ckpt"
    start = time.perf_counter()
    synthaug.fit(data, family, out=run, seed=0, max_steps=max_steps, ckpt_path="last" if last.exists() else None,
                 trainer_kwargs={"max_time": {"minutes": minutes}}, **fit_options, **options)  # fmt: skip
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    timer = next((v for k, v in checkpoint["callbacks"].items() if k.startswith("Timer")), None)
    seconds = timer["time_elapsed"]["train"] if timer else time.perf_counter() - start
    return {"steps": int(checkpoint["global_step"]), "seconds": float(seconds), "budget_minutes": minutes,
            "threads": torch.get_num_threads(), "options": options}  # fmt: skip


def train(family: str, options: dict, data: LabeledImages, run: Path, args, max_steps: int | None) -> dict:
    result = cached(run / "train.json", lambda: timed_fit(family, options, data, run, max_steps, args.budget_minutes))
    refuse_stale(run, family, options)
    return result


def refuse_stale(run: Path, family: str, options: dict) -> None:
    """Stop if ``run`` holds a generator cached under this spec's name before a default changed."""
    stale = stale_options(synthaug.load(run / "generator"), family, **options) if (run / "generator").is_dir() else {}
    if stale:
        changes = describe_stale(stale)
        raise SystemExit(f"{run} holds a {family} trained with other options ({changes}): name the spec's options "
                         f"(e.g. NAME={family}:{next(iter(stale))}=...), give another --out, or delete the folder")  # fmt: skip


def curve(family: str, options: dict, data: LabeledImages, run: Path, args) -> dict[float, Path]:
    """The generator after each of ``args.curve_minutes`` minutes of one run, ``{minutes: stage folder}``."""
    stages = {}
    for minutes in sorted(args.curve_minutes):
        stage = run / "curve" / f"{minutes:g}min"

        def compute(minutes=minutes, stage=stage) -> dict:
            result = timed_fit(family, options, data, run, args.max_steps or 10**9, minutes, logger=False)
            shutil.copytree(run / "generator", stage / "generator", dirs_exist_ok=True)
            return result

        cached(stage / "train.json", compute)
        refuse_stale(stage, family, options)
        stages[minutes] = stage
    return stages


def print_curve(name: str, stages: dict[float, Path], results: dict, args) -> None:
    first = next(iter(results.values()))
    print(f"\n{name}: quality against training minutes, Fashion-MNIST {args.per_class} per class, "
          f"{args.samples_per_class * 10:,} samples per point; real floor FID {first['floor']['fid']:.4f}, "
          f"real CAS {first['cas']['real']:.1%}\n")  # fmt: skip
    print("| minutes | steps | threads | FID | KID | precision | recall | coverage | CAS | near-copies |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for minutes, stage in stages.items():
        t, r = json.loads((stage / "train.json").read_text()), results[minutes]
        o = r["overall"]
        print(f"| {t['seconds'] / 60:.1f} | {t['steps']} | {t['threads']} | {o['fid']:.3f} | {o['kid']:.4f} | "
              f"{o['precision']:.3f} | {o['recall']:.3f} | {o['coverage']:.3f} | {r['cas']['synthetic']:.1%} | "
              f"{r['memorization']['near_copy_share']:.2%} |")  # fmt: skip


def compressed(method: str, teacher_run: Path, data: LabeledImages, run: Path, args) -> dict:
    """``synthaug.compress`` of the trained ddpm (cached like a training run)."""
    def compute() -> dict:
        start = time.perf_counter()
        compress(synthaug.load(teacher_run / "generator"), data, method=method, prune_steps=args.prune_steps,
                 distill_steps=args.distill_steps, out=run, enable_progress_bar=False)  # fmt: skip
        steps = {"prune": args.prune_steps, "distill": args.distill_steps, "prune+distill": args.prune_steps + args.distill_steps}
        return {"steps": steps[method], "seconds": time.perf_counter() - start, "method": method, "threads": torch.get_num_threads()}

    return cached(run / "train.json", compute)


def throughput(generator, batch: int, repeats: int = 5, **sample_options) -> float:
    labels = torch.arange(batch) % generator.num_classes
    generator.sample(labels[:8], generator=torch_generator(0), **sample_options)  # warm-up
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        generator.sample(labels, generator=torch_generator(r), **sample_options)
        rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates)


def sample_set(generator, per_class: int, seed: int, batch: int, **sample_options) -> LabeledImages:
    labels = torch.arange(generator.num_classes).repeat_interleave(per_class)
    images = sample_uint8(generator, labels, generator=torch_generator(seed), batch_size=batch, **sample_options)
    return LabeledImages(images, labels, generator.class_names)


def spread(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of the per-pixel standard deviation within the class, in [0, 1] units."""
    x = images.float() / 255
    return float(torch.stack([x[labels == c].std(0).mean() for c in labels.unique()]).mean())


def quality(run: Path, test: LabeledImages, train_full: LabeledImages, subset: LabeledImages, args) -> dict:
    def compute() -> dict:
        generator = synthaug.load(run / "generator")
        bank = SyntheticBank.generate(generator, path=run / "bank", per_class=args.samples_per_class, seed=1)
        report = evaluate(test, bank, real_train=train_full, generator_train=subset, seed=0, out=run / "report").to_dict()
        report["spread"] = spread(bank.images(range(len(bank))), bank.labels)
        return report

    return cached(run / "quality.json", compute)


def sweep(run: Path, test: LabeledImages, train_full: LabeledImages, args) -> dict:
    generator = synthaug.load(run / "generator")
    extractor = domain_classifier(train_full, real_test=test, seed=0)
    f_test = extractor(test.images)
    results = {}
    for sampler, steps in SWEEP:
        def compute(sampler=sampler, steps=steps) -> dict:
            fake = sample_set(generator, args.sweep_per_class, 2, args.batch, sampler=sampler, steps=steps)
            return feature_metrics(f_test, extractor(fake.images))

        results[f"{sampler}/{steps}"] = cached(run / "sweep" / f"{sampler}-{steps}.json", compute)
        results[f"{sampler}/{steps}"]["images_per_s"] = throughput(generator, args.batch, 3, sampler=sampler, steps=steps)
    for guidance in GUIDANCE:
        def compute(guidance=guidance) -> dict:
            fake = sample_set(generator, args.sweep_per_class, 2, args.batch, guidance=guidance)
            cas = accuracy(train_classifier(fake, image_shape=test.image_shape, num_classes=test.num_classes, seed=0), test)
            return {**feature_metrics(f_test, extractor(fake.images)), "cas": cas}

        results[f"guidance/{guidance:g}"] = cached(run / "sweep" / f"guidance-{guidance:g}.json", compute)
        results[f"guidance/{guidance:g}"]["images_per_s"] = throughput(generator, args.batch, 3, guidance=guidance)
    return results


def print_quality(results: dict, trained: dict, rates: dict, test: LabeledImages, args) -> None:
    any_report = next(iter(results.values()))
    print(f"\nFashion-MNIST, {args.per_class} real images per class; torch threads: {torch.get_num_threads()}; "
          f"images/s at batch {args.batch}; {args.samples_per_class * 10:,} synthetic vs {len(test):,} test images; "
          f"features: {any_report['extractor']['name']} (test accuracy {any_report['extractor']['accuracy']:.1%})\n")  # fmt: skip
    print("| generator | parameters | steps | train time | FID | KID | precision | recall | density | coverage | CAS | "
          "near-copies | spread | images/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    floor = any_report["floor"]
    print(f"| real floor | | | | {floor['fid']:.4f} | {floor['kid']:.4f} | {floor['precision']:.3f} | {floor['recall']:.3f} | "
          f"{floor['density']:.3f} | {floor['coverage']:.3f} | {any_report['cas']['real']:.1%} | | "
          f"{spread(test.images, test.labels):.3f} | |")  # fmt: skip
    for name, r in results.items():
        o, t = r["overall"], trained[name]
        print(f"| {name} | {t['parameters'] / 1e6:.2f}M | {t['steps']} | {t['seconds'] / 60:.1f} min | {o['fid']:.3f} | {o['kid']:.4f} | {o['precision']:.3f} | "
              f"{o['recall']:.3f} | {o['density']:.3f} | {o['coverage']:.3f} | {r['cas']['synthetic']:.1%} | "
              f"{r['memorization']['near_copy_share']:.2%} | {r['spread']:.3f} | {rates[name]:.0f} |")  # fmt: skip


def print_sweep(results: dict, args) -> None:
    reference = results["dpm++2m/250"]["fid"]
    print(f"\nddpm samplers, {args.sweep_per_class * 10:,} samples each (guidance at its default):\n")
    print("| sampler | steps | FID | FID / FID(250 steps) | images/s |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        if not name.startswith("guidance/"):
            sampler, steps = name.split("/")
            print(f"| {sampler} | {steps} | {r['fid']:.3f} | {r['fid'] / reference:.2f} | {r['images_per_s']:.0f} |")
    print("\nddpm guidance (default sampler and steps):\n")
    print("| guidance | FID | precision | recall | CAS | images/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        if name.startswith("guidance/"):
            print(f"| {name.split('/')[1]} | {r['fid']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['cas']:.1%} | "
                  f"{r['images_per_s']:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["vae", "gan", "ddpm"], help="family specs (see above)")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--budget-minutes", type=float, default=30.0)
    parser.add_argument("--max-steps", type=int, default=None, help="default: each family's default_steps")
    parser.add_argument("--steps", nargs="+", default=[], metavar="NAME=N", help="steps of one spec (e.g. ar=20000 with the "
                        "time budget: equal wall time with the others)")
    parser.add_argument("--samples-per-class", type=int, default=1000)
    parser.add_argument("--curve-minutes", nargs="+", type=float, default=None, metavar="M",
                        help="instead of the table: each spec's quality after M minutes of one run (e.g. 5 10 15 30)")
    parser.add_argument("--sweep", action="store_true", help="the ddpm sampler and guidance sweeps")
    parser.add_argument("--compress", nargs="*", default=[], choices=METHODS, help="rows for compressed copies of 'ddpm'")
    parser.add_argument("--prune-steps", type=int, default=1000)
    parser.add_argument("--distill-steps", type=int, default=1000)
    parser.add_argument("--sweep-per-class", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128, help="labels per sample() call for throughput")
    parser.add_argument("--stage", choices=["train", "all"], default="all")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default="runs/benchmarks/generator_quality")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    train_full, test = load_fashion_mnist(split="train"), load_fashion_mnist(split="test")
    subset = train_full.subset(args.per_class, seed=0)
    root = Path(args.out) / f"fashion-mnist-{args.per_class}"
    specs = [parse_spec(spec) for spec in args.families]
    steps = {name: int(n) for name, n in (pair.split("=") for pair in args.steps)}
    if args.curve_minutes:
        for name, family, options in specs:
            stages = curve(family, options, subset, root / name / "curve-run", args)
            if args.stage == "all":
                print_curve(name, stages, {m: quality(stage, test, train_full, subset, args) for m, stage in stages.items()}, args)
        return
    trained = {name: train(family, options, subset, root / name, args, steps.get(name, args.max_steps))
               for name, family, options in specs}  # fmt: skip
    for method in args.compress:
        name = f"ddpm {method}"
        trained[name] = compressed(method, root / "ddpm", subset, root / name.replace(" ", "-"), args)
        specs.append((name, "ddpm", {}))
    runs = {name: root / name.replace(" ", "-") for name, _, _ in specs}
    for name, run in runs.items():
        trained[name]["parameters"] = parameters(synthaug.load(run / "generator"))
        save_image_grid(class_grid(synthaug.load(run / "generator"), 10, seed=0), run / "grid.png", nrow=10)
    if args.stage == "train":
        return
    results = {name: quality(run, test, train_full, subset, args) for name, run in runs.items()}
    rates = {name: throughput(synthaug.load(run / "generator"), args.batch) for name, run in runs.items()}
    print_quality(results, trained, rates, test, args)
    if args.sweep:
        print_sweep(sweep(root / next(name for name, family, _ in specs if family == "ddpm"), test, train_full, args), args)


if __name__ == "__main__":
    main()
