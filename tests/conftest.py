from pathlib import Path

import pytest
import torch

from synthaug.data import FASHION_MNIST_ROOT, load_digits

#: A VAE small enough to train in a second or two on the CPU.
TINY_VAE = {"latent_dim": 8, "base_channels": 8, "max_channels": 16, "embed_dim": 4}
#: Tiny hyper-parameters per registered family, for tests parametrized over GENERATORS.
TINY_DDPM = {"base_channels": 8, "channel_mults": (1, 2), "timesteps": 50, "steps": 4, "dropout": 0.0}
#: the ddpm as it was before EDM became the default (v-prediction on a cosine schedule)
TINY_VP = {**TINY_DDPM, "parameterization": "vp"}
TINY_GAN = {"latent_dim": 8, "generator_channels": 8, "discriminator_channels": 8, "max_channels": 16}
TINY_AR = {"channels": 8, "layers": 2, "head_hidden": 8}
TINY = {"vae": TINY_VAE, "ddpm": TINY_DDPM, "gan": TINY_GAN, "ar": TINY_AR}
#: Trainer settings that keep test runs quiet.
QUIET = {"enable_progress_bar": False, "logger": False}


@pytest.fixture(autouse=True, scope="session")
def _cache_under_tmp(tmp_path_factory):
    """Nothing a test runs may write outside pytest's temporary directories, caches included."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SYNTHAUG_CACHE", str(tmp_path_factory.mktemp("synthaug-cache")))
    yield
    mp.undo()


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


@pytest.fixture(scope="session")
def digits_generator(digits, tmp_path_factory):
    """A small VAE trained briefly on 30 digits per class (good enough to tell its classes apart), saved to disk.

    Those 300 images are in every ``digits.split(k, seed=0)[0]`` with k >= 30 (and in ``load_digits(split="train")``),
    so the held-out rest of such a split never shares an image with the generator's training data.
    """
    import synthaug

    out = tmp_path_factory.mktemp("digits_vae")
    train = digits.split(30, seed=0)[0]
    synthaug.fit(train, "vae", out=out, max_steps=150, base_channels=8, max_channels=16, **QUIET)
    return synthaug.load(out / "generator")


@pytest.fixture(scope="session")
def digits_bank(digits_generator, tmp_path_factory):
    from synthaug.bank import SyntheticBank

    return SyntheticBank.generate(digits_generator, path=tmp_path_factory.mktemp("bank"), per_class=40, shard_size=64)
