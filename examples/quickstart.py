"""Quickstart: train a class-conditional VAE on the bundled digits, save it, load it, sample a class.

    python examples/quickstart.py            # about 30 s on 2 CPU cores
"""

import argparse

import torch

import synthaug
from synthaug.data import load_digits
from synthaug.visualize import save_image_grid

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--steps", type=int, default=1000)
parser.add_argument("--out", default="runs/quickstart")
args = parser.parse_args()

data = load_digits()  # LabeledImages: uint8 (1797, 1, 8, 8), int64 labels, class names "0".."9"
generator = synthaug.fit(data, "vae", out=args.out, max_steps=args.steps, latent_dim=16)

generator = synthaug.load(f"{args.out}/generator")  # config.json + model.safetensors, never unpickled
sevens = generator.sample([7] * 16, generator=torch.Generator().manual_seed(0))  # floats in [-1, 1]
print(f"sampled {tuple(sevens.shape)} images of class {generator.class_names[7]!r}")
print("saved to", save_image_grid(sevens, f"{args.out}/sevens.png", nrow=8))
