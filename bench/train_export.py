"""Trains the bench's PyTorch `smaller` on MNIST and exports it with torch.onnx.export, as the
README's "Analyse your own PyTorch model" tells a user to: the model behind that section's
measured figures. Run from the repository root, in the bench's environment, on the training set
as .npy (uint8 or [0, 1] images, N x 784, and labels):

    bench/.venv/bin/python bench/train_export.py IMAGES.npy LABELS.npy OUT.onnx [EPOCHS]

The product never runs Python.
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_fixtures import export_onnx  # noqa: E402
from peer import Smaller  # noqa: E402

MEAN, STD = 0.1307, 0.3081


def main():
    images_path, labels_path, out = sys.argv[1:4]
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    torch.manual_seed(0)
    images = np.load(images_path).astype(np.float32).reshape(-1, 1, 28, 28)
    if images.max() > 1:
        images /= 255.0
    x = (torch.from_numpy(images) - MEAN) / STD
    y = torch.from_numpy(np.load(labels_path).astype(np.int64))
    model = Smaller()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y))
        for s in range(0, len(order), 128):
            idx = order[s : s + 128]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}", flush=True)
    model.eval()
    export_onnx(model, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
