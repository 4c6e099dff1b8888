"""SyntheticAugment in a plain PyTorch training loop (digits, under a minute on 2 CPU cores).

    python examples/augment_pytorch.py
"""

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from synthaug import SyntheticAugment
from synthaug.evaluation import SmallCNN, accuracy

from _digits import arguments, prepare

args = arguments(__doc__)
train, test, bank = prepare(args.out, args.generator_steps)

# Half as many synthetic items again as real ones, with classes in the real proportions.
augmented = SyntheticAugment(train, bank, ratio=0.5, mode="append", seed=0)
sampler = augmented.sampler(seed=0)  # its indices carry the epoch into the (persistent) workers
loader = DataLoader(augmented, batch_size=64, sampler=sampler, num_workers=2, persistent_workers=True)

torch.manual_seed(0)  # a script's own choice; the library never touches the global RNG
model = SmallCNN(in_channels=1, num_classes=10)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
step, epoch = 0, 0
while step < args.steps:
    sampler.set_epoch(epoch)
    for images, labels in loader:  # uint8 (B, 1, 8, 8): the same form as the real items
        loss = F.cross_entropy(model(images.float() / 127.5 - 1), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step == args.steps:
            break
    epoch += 1

print(f"{len(train)} real + {len(augmented) - len(train)} synthetic items per epoch")
print(f"test accuracy after {step} steps: {accuracy(model, test):.2%} on {len(test)} held-out digits")
