"""SyntheticReplaceImage inside an albumentations pipeline (digits, under a minute on 2 CPU cores).

    python examples/augment_albumentations.py   # needs: pip install 'synthaug[albumentations]'
"""

import albumentations as A
import torch

from synthaug.evaluation import accuracy, train_classifier
from synthaug.integrations.albumentations import SyntheticReplaceImage

from _digits import arguments, prepare

args = arguments(__doc__)
train, test, bank = prepare(args.out, args.generator_steps)

pipeline = A.Compose(
    [SyntheticReplaceImage(str(bank.path), p=0.3), A.Affine(translate_px=(-1, 1), p=0.5)],
    seed=0,
)
print("serialised as:", A.to_dict(pipeline)["transform"]["transforms"][0])


class Digits(torch.utils.data.Dataset):
    """Real digits as albumentations sees them (HWC numpy), back to CHW tensors for the model."""

    def __len__(self):
        return len(train)

    def __getitem__(self, i):
        image, label = train[i]
        out = pipeline(image=image.permute(1, 2, 0).numpy(), label=label)  # the label drives the replacement
        return torch.from_numpy(out["image"]).permute(2, 0, 1), label


model = train_classifier(Digits(), image_shape=(1, 8, 8), num_classes=10, steps=args.steps, seed=0)
print(f"test accuracy: {accuracy(model, test):.2%} on {len(test)} held-out digits")
