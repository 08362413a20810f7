"""Learning-rate schedules, applied once per epoch (as torch.optim.lr_scheduler steps per epoch).

Each schedule gives the learning rate for the next epoch from the epoch count and, for
reduce-on-plateau, the monitored metric. The rules are PyTorch's; the tests compare them with
learning rates recorded from torch.optim.lr_scheduler.
"""

import math

# name -> parameters and defaults (read by the config schema)
SCHEDULES = {
    "constant": {},
    "step": {"step_size": 10.0, "gamma": 0.1},
    "exponential": {"gamma": 0.95},
    "cosine": {"t_max": 0.0, "eta_min": 0.0},  # t_max 0: the number of epochs
    "plateau": {"factor": 0.1, "patience": 10.0, "threshold": 1e-4, "cooldown": 0.0, "min_lr": 0.0},
}


class Schedule:
    """lr(epoch) for epoch = 0, 1, ...; `step(metric)` after each epoch moves to the next one."""

    def __init__(self, cfg: dict, base_lr: float, epochs: int, counters: dict | None = None):
        self.name = cfg["name"]
        self.cfg = cfg
        self.base_lr = base_lr
        self.epochs = epochs
        self.epoch = 0
        self.lr = base_lr
        self.best = math.inf
        self.bad_epochs = 0
        self.cooldown = 0
        if counters:  # resuming
            self.__dict__.update(counters)

    def counters(self) -> dict:
        """The state that changes from epoch to epoch (plain numbers, for checkpoints)."""
        return {k: getattr(self, k) for k in ("epoch", "lr", "best", "bad_epochs", "cooldown")}

    def step(self, metric: float) -> float:
        """End of an epoch with the monitored metric (lower is better); returns the next lr."""
        self.epoch += 1
        c, e = self.cfg, self.epoch
        if self.name == "step":
            self.lr = self.base_lr * c["gamma"] ** (e // int(c["step_size"]))
        elif self.name == "exponential":
            self.lr = self.base_lr * c["gamma"] ** e
        elif self.name == "cosine":
            t_max = int(c["t_max"]) or self.epochs
            self.lr = c["eta_min"] + (self.base_lr - c["eta_min"]) * (1 + math.cos(math.pi * e / t_max)) / 2
        elif self.name == "plateau":
            self._plateau(metric)
        return self.lr

    def _plateau(self, metric: float) -> None:
        c = self.cfg
        if metric < self.best * (1.0 - c["threshold"]):
            self.best = metric
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if self.cooldown > 0:
            self.cooldown -= 1
            self.bad_epochs = 0
        if self.bad_epochs > int(c["patience"]):
            new_lr = max(self.lr * c["factor"], c["min_lr"])
            if self.lr - new_lr > 1e-8:
                self.lr = new_lr
            self.cooldown = int(c["cooldown"])
            self.bad_epochs = 0
