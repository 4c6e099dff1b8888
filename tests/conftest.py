from pathlib import Path

import pytest
import torch

from synthaug.data import FASHION_MNIST_ROOT, load_digits

#: A VAE small enough to train in a second or two on the CPU.
TINY_VAE = {"latent_dim": 8, "base_channels": 8, "max_channels": 16, "embed_dim": 4}
#: Tiny hyper-parameters per registered family, for tests parametrized over GENERATORS.
TINY = {"vae": TINY_VAE}
#: Trainer settings that keep test runs quiet.
QUIET = {"progress_bar": False, "logger": False}


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture(scope="session")
def fashion_root():
    if not (Path(FASHION_MNIST_ROOT) / "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not installed in {FASHION_MNIST_ROOT}: apt-get install dataset-fashion-mnist")
    return FASHION_MNIST_ROOT


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
