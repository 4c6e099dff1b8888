"""Adding synthetic rows to a HuggingFace dataset with Dataset.map (digits, under a minute on 2 CPU cores).

    python examples/augment_huggingface.py      # needs: pip install 'synthaug[hf]'
"""

import datasets
from PIL import Image

from synthaug.data import from_hf
from synthaug.evaluation import accuracy, train_classifier
from synthaug.integrations.huggingface import SyntheticRows

from _digits import arguments, prepare

args = arguments(__doc__)
train, test, bank = prepare(args.out, args.generator_steps)

# The user's dataset: PIL images and a ClassLabel column.
features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(train.class_names))})
rows = {"image": [Image.fromarray(x[0].numpy(), mode="L") for x in train.images], "label": train.labels.tolist()}
real = datasets.Dataset.from_dict(rows, features=features)

# One synthetic row per real row; with_indices makes the rows independent of batching and num_proc.
augmented = real.map(SyntheticRows(bank, ratio=1.0, seed=0), batched=True, with_indices=True)
print(augmented)
print(f"{sum(augmented['is_synthetic'])} of {len(augmented)} rows are synthetic; fingerprint {augmented._fingerprint}")

model = train_classifier(from_hf(augmented), image_shape=(1, 8, 8), num_classes=10, steps=args.steps, seed=0)
print(f"test accuracy: {accuracy(model, test):.2%} on {len(test)} held-out digits")
