"""Shared by the examples: a digits training split, and a VAE and bank trained on it only (cached in OUT)."""

from __future__ import annotations

import argparse
from pathlib import Path

import synthaug
from synthaug.data import LabeledImages, load_digits


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default="runs/examples", help="where the generator and bank are cached")
    parser.add_argument("--generator-steps", type=int, default=600)
    parser.add_argument("--steps", type=int, default=300, help="classifier training steps")
    return parser.parse_args()


def prepare(out: str, generator_steps: int) -> tuple[LabeledImages, LabeledImages, synthaug.SyntheticBank]:
    """30 real digits per class to train on, the rest to test on, and a bank from a VAE fitted to the 300."""
    train, test = load_digits().split(30, seed=0)
    run = Path(out) / f"vae-{generator_steps}"
    if (run / "generator" / "config.json").is_file():
        generator = synthaug.load(run / "generator")
    else:
        generator = synthaug.fit(train, "vae", out=run, max_steps=generator_steps, enable_progress_bar=False)
    bank = synthaug.SyntheticBank.generate(generator, path=run / "bank", per_class=200, seed=0)
    return train, test, bank
