"""Training-step and sampling speed of synthaug's generators, side by side with diffusers at equal size.

    python benchmarks/generator_speed.py          # about 10 minutes alone on 2 CPU cores; run nothing else meanwhile

At 28x28, one channel, 10 classes, batch 64 for training and 128 for sampling:

* synthaug's ddpm (its defaults: the base size, a UNet on 2x2 patches, EDM's preconditioning and
  loss) against a diffusers ``UNet2DModel`` with class embeddings and blocks (32, 64), the size
  closest to ours, trained on the v-prediction loss (either loss is a few elementwise operations
  beside the network), and sampled with ``DPMSolverMultistepScheduler`` for the same 10 steps;
* the ddpm's other sizes (``size="small"`` and ``"large"``): their step's cost and share of the
  peak, for the size ladder (no diffusers counterpart is timed for them);
* the ddpm training step as synthaug runs it (Adam, then the EMA update) with its speed options:
  channels-last memory, a fused Adam, ``torch.compile``;
* the vae and gan steps and their sampling.

Each variant is timed in its own rounds, alternating, after a warm-up, and reported as the median
of ``--repeats`` rounds; a plain PyTorch loop (no Lightning) times the step itself. The training
step's achieved GFLOP/s (operations counted by ``torch.utils.flop_counter``) is set against this
machine's float32 ``torch.mm`` throughput measured in the same run. diffusers is a benchmark-only
dependency (``pip install diffusers``); the library never imports it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from synthaug.generators import create
from synthaug.seeding import torch_generator

SHAPE, CLASSES = (1, 28, 28), 10


def matmul_peak(n: int = 1024, repeats: int = 20) -> float:
    """This machine's float32 matrix-product throughput in GFLOP/s (the best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def timed(fn: Callable[[], object], repeats: int, inner: int) -> list[float]:
    """Seconds per call of ``fn``: ``repeats`` rounds of ``inner`` calls each, after one round of warm-up."""
    for _ in range(inner):
        fn()
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        rounds.append((time.perf_counter() - start) / inner)
    return rounds


def synthaug_step(model, batch: int, *, channels_last: bool = False, fused: bool = False, compile_: bool = False):
    """A closure running one training step of a synthaug generator as fit does (loss, backward, Adam, EMA)."""
    g = torch_generator(0)
    images = torch.rand((batch, *SHAPE), generator=g) * 2 - 1
    labels = torch.randint(CLASSES, (batch,), generator=g)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    loss_fn = torch.compile(model.loss) if compile_ else model.loss
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=fused)
    step = [0]

    def run() -> None:
        loss = loss_fn(images, labels, generator=g)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.on_train_step_end(step[0])
        step[0] += 1

    return run


def gan_step(model, batch: int):
    g = torch_generator(0)
    images = torch.rand((batch, *SHAPE), generator=g) * 2 - 1
    labels = torch.randint(CLASSES, (batch,), generator=g)
    optimizers = model.configure_optimizers(2e-4)

    def run() -> None:
        model.manual_step(images, labels, optimizers, lambda loss: loss.backward(), generator=g)
        model.on_train_step_end()

    return run


def diffusers_unet():
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=28, in_channels=1, out_channels=1, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
        num_class_embeds=CLASSES + 1,
    )  # fmt: skip


def diffusers_step(unet, batch: int):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    g = torch_generator(0)
    images = torch.rand((batch, *SHAPE), generator=g) * 2 - 1
    labels = torch.randint(CLASSES, (batch,), generator=g)
    optimizer = torch.optim.Adam(unet.parameters(), lr=1e-4)

    def run() -> None:
        noise = torch.randn(images.shape, generator=g)
        t = torch.randint(1000, (batch,), generator=g)
        target = scheduler.get_velocity(images, noise, t)
        loss = F.mse_loss(unet(scheduler.add_noise(images, noise, t), t, class_labels=labels).sample, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return run


def diffusers_sample(unet, batch: int, steps: int):
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                            prediction_type="v_prediction")  # fmt: skip
    labels = torch.arange(batch) % CLASSES

    @torch.no_grad()
    def run() -> None:
        scheduler.set_timesteps(steps)
        x = torch.randn((batch, *SHAPE), generator=torch_generator(1))
        for t in scheduler.timesteps:
            x = scheduler.step(unet(x, t, class_labels=labels).sample, t, x).prev_sample

    return run


def flops(fn: Callable[[], object]) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-inner", type=int, default=10, help="training steps per round")
    parser.add_argument("--sample-batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile variant")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # the networks' initialisation; only speed is measured

    peak = matmul_peak()
    ddpm = create("ddpm", num_classes=CLASSES, image_shape=SHAPE)
    unet = diffusers_unet()
    params = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads; float32 torch.mm peak {peak:.1f} GFLOP/s; "
          f"synthaug ddpm {params(ddpm.unet) / 1e6:.2f}M parameters (UNet), diffusers UNet2DModel {params(unet) / 1e6:.2f}M\n")  # fmt: skip

    sizes = {f"synthaug ddpm {size}": size for size in ("small", "large")}
    variants = {
        "synthaug ddpm": synthaug_step(create("ddpm", num_classes=CLASSES, image_shape=SHAPE), 64),
        **{name: synthaug_step(create("ddpm", num_classes=CLASSES, image_shape=SHAPE, size=size), 64) for name, size in sizes.items()},
        "synthaug ddpm, channels-last": synthaug_step(create("ddpm", num_classes=CLASSES, image_shape=SHAPE), 64, channels_last=True),
        "synthaug ddpm, fused Adam": synthaug_step(create("ddpm", num_classes=CLASSES, image_shape=SHAPE), 64, fused=True),
        "diffusers UNet2DModel": diffusers_step(unet, 64),
    }
    if args.compile:
        variants["synthaug ddpm, torch.compile"] = synthaug_step(create("ddpm", num_classes=CLASSES, image_shape=SHAPE), 64,
                                                                 compile_=True)  # fmt: skip
    variants["synthaug vae"] = synthaug_step(create("vae", num_classes=CLASSES, image_shape=SHAPE), 64)
    variants["synthaug gan (D + G)"] = gan_step(create("gan", num_classes=CLASSES, image_shape=SHAPE), 64)
    rounds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):  # alternate the variants round by round
        for name, fn in variants.items():
            rounds[name] += timed(fn, 1, args.train_inner)
    step_flops = {"synthaug ddpm": flops(synthaug_step(create("ddpm", num_classes=CLASSES, image_shape=SHAPE), 64)),
                  "diffusers UNet2DModel": flops(diffusers_step(diffusers_unet(), 64)),
                  **{name: flops(synthaug_step(create("ddpm", num_classes=CLASSES, image_shape=SHAPE, size=size), 64))
                     for name, size in sizes.items()}}  # fmt: skip
    reference = statistics.median(rounds["diffusers UNet2DModel"])
    print("| training step (batch 64) | ms (median) | min-max | vs diffusers | GFLOP/step | GFLOP/s | share of mm peak |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, times in rounds.items():
        median = statistics.median(times)
        f = step_flops.get(name.split(",")[0]) if "ddpm" in name or "diffusers" in name else None
        rate = f"{f / median / 1e9:.1f} | {f / median / 1e9 / peak:.0%}" if f else " | "
        gflop = f"{f / 1e9:.2f}" if f else ""
        speed = f"{reference / median:.2f}x" if ("ddpm" in name and name not in sizes) or "diffusers" in name else ""
        print(f"| {name} | {1000 * median:.0f} | {1000 * min(times):.0f}-{1000 * max(times):.0f} | {speed} | {gflop} | {rate} |")

    labels = torch.arange(args.sample_batch) % CLASSES
    samplers = {
        "synthaug ddpm (10 dpm++2m steps)": lambda: ddpm.sample(labels, generator=torch_generator(1)),
        "diffusers UNet2DModel + DPMSolverMultistepScheduler (10 steps)": diffusers_sample(unet, args.sample_batch, 10),
        "synthaug vae": (lambda m: lambda: m.sample(labels, generator=torch_generator(1)))(create("vae", num_classes=CLASSES, image_shape=SHAPE)),
        "synthaug gan": (lambda m: lambda: m.sample(labels, generator=torch_generator(1)))(create("gan", num_classes=CLASSES, image_shape=SHAPE)),
    }  # fmt: skip
    quantized = create("ddpm", num_classes=CLASSES, image_shape=SHAPE)
    quantized.load_state_dict(ddpm.state_dict())
    # The only post-training int8 path PyTorch's CPU kernels offer for these networks: dynamic quantization of
    # the linear layers (the static kind cannot run GroupNorm and SiLU in int8).
    quantized.ema = torch.ao.quantization.quantize_dynamic(quantized.ema, {torch.nn.Linear}, dtype=torch.qint8)
    samplers["synthaug ddpm, linear layers int8 (dynamic)"] = lambda: quantized.sample(labels, generator=torch_generator(1))
    sample_rounds: dict[str, list[float]] = {name: [] for name in samplers}
    for _ in range(args.repeats):
        for name, fn in samplers.items():
            sample_rounds[name] += timed(fn, 1, 1)
    reference = statistics.median(sample_rounds["diffusers UNet2DModel + DPMSolverMultistepScheduler (10 steps)"])
    print(f"\n| sampling (batch {args.sample_batch}) | images/s (median) | vs diffusers |")
    print("|---|---:|---:|")
    for name, times in sample_rounds.items():
        median = statistics.median(times)
        speed = f"{reference / median:.2f}x" if "ddpm" in name or "diffusers" in name else ""
        print(f"| {name} | {args.sample_batch / median:.0f} | {speed} |")


if __name__ == "__main__":
    main()
