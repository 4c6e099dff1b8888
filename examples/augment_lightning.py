"""SyntheticMixCallback in a Lightning training run (digits, under a minute on 2 CPU cores).

    python examples/augment_lightning.py
"""

import lightning as L
import torch
from torch.utils.data import DataLoader

from synthaug.console import quiet_lightning
from synthaug.evaluation import ClassifierModule, SmallCNN, accuracy
from synthaug.integrations.lightning import SyntheticMixCallback

from _digits import arguments, prepare

args = arguments(__doc__)
train, test, bank = prepare(args.out, args.generator_steps)


def collate(items):
    """A list batch, which the callback can edit in place (a tuple could not be)."""
    return [torch.stack([image for image, _ in items]), torch.tensor([label for _, label in items])]


loader = DataLoader(train, batch_size=64, shuffle=True, collate_fn=collate, generator=torch.Generator().manual_seed(0))
mix = SyntheticMixCallback(bank, ratio=0.25, mode="replace", seed=0)  # a quarter of every batch
torch.manual_seed(0)
model = SmallCNN(in_channels=1, num_classes=10)
with quiet_lightning():  # Lightning's hardware banner, tips and its own deprecation notices off; warnings still show
    trainer = L.Trainer(max_steps=args.steps, callbacks=[mix], logger=False, enable_checkpointing=False,
                        enable_model_summary=False, enable_progress_bar=False, default_root_dir=args.out)  # fmt: skip
    trainer.fit(ClassifierModule(model), loader)

print(f"mixed {mix.synthetic_items} synthetic items into {mix.batches_mixed} batches")
print(f"test accuracy: {accuracy(model, test):.2%} on {len(test)} held-out digits")
