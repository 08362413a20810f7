"""The lecture's PyTorch example (../shared/LECTURE.md, "The PyTorch example") as a script.

    python bench/lecture_torch.py ../shared/data/pima-indians-diabetes.csv

np.loadtxt, nn.Sequential(8->12 ReLU ->8 ReLU ->1 Sigmoid), BCELoss, Adam lr 0.001, 100 epochs
of sequential batches of 10, accuracy on the training set; it also prints its training loop's
seconds. `python -m bench` runs it as a whole process (1b), reads that loop time (1a), and
imports `train_loop` for its other workloads.
"""

import sys
import time

import numpy as np
import torch
import torch.nn as nn


def train_loop(model, loss_fn, optimizer, X, y, n_epochs: int, batch_size: int) -> None:
    """The lecture's loop: sequential slices, no shuffling."""
    for epoch in range(n_epochs):
        for i in range(0, len(X), batch_size):
            Xbatch = X[i:i + batch_size]
            y_pred = model(Xbatch)
            ybatch = y[i:i + batch_size]
            loss = loss_fn(y_pred, ybatch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def main(path: str) -> None:
    torch.manual_seed(0)
    dataset = np.loadtxt(path, delimiter=",")
    X = torch.tensor(dataset[:, 0:8], dtype=torch.float32)
    y = torch.tensor(dataset[:, 8], dtype=torch.float32).reshape(-1, 1)
    model = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    start = time.perf_counter()
    train_loop(model, nn.BCELoss(), optimizer, X, y, n_epochs=100, batch_size=10)
    print(f"Training loop {time.perf_counter() - start:.6f} s")
    with torch.no_grad():
        accuracy = (model(X).round() == y).float().mean()
    print(f"Accuracy {float(accuracy):.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
