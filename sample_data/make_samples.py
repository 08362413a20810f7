"""Write the synthetic sample CSVs in this folder, byte for byte the same on every run.

    python sample_data/make_samples.py [FOLDER]     (default: the folder of this script)

Three small tables with a header row, made up here (no real people or houses):
- churn.csv: binary, target `churned` (yes/no); `contract` and `payment` are categorical and
  some `monthly_charges` cells are empty (missing).
- fruit.csv: multiclass, target `fruit` (apple/lemon/orange); `grade` is categorical.
- house_prices.csv: regression, target `price_k` (thousands); `neighborhood` is categorical.

Numbers are written with fixed format strings, not by pandas, so the bytes do not depend on a
library's float printing.
"""

import sys
from pathlib import Path

import numpy as np

SEED = 20240611


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    lines = [",".join(header)] + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")


def churn(rng: np.random.Generator, n: int = 600) -> tuple[list[str], list[list[str]]]:
    """Customers of a made-up phone company; who left within a year."""
    tenure = rng.integers(1, 73, n)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n, p=[0.5, 0.3, 0.2])
    payment = rng.choice(["card", "bank-transfer", "cheque"], n, p=[0.45, 0.35, 0.2])
    charges = np.clip(rng.normal(65.0, 20.0, n), 18.0, 120.0)
    calls = rng.poisson(1.5, n)
    logit = (0.4 - 0.045 * tenure + 1.3 * (contract == "month-to-month") - 1.0 * (contract == "two-year")
             + 0.03 * (charges - 65.0) + 0.5 * calls + 0.5 * (payment == "cheque") - 0.9)
    churned = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    missing = rng.random(n) < 0.03
    rows = [
        [str(tenure[i]), contract[i], payment[i], "" if missing[i] else f"{charges[i]:.2f}", str(calls[i]),
         "yes" if churned[i] else "no"]
        for i in range(n)
    ]
    return ["tenure_months", "contract", "payment", "monthly_charges", "support_calls", "churned"], rows


def fruit(rng: np.random.Generator, n_per_class: int = 150) -> tuple[list[str], list[list[str]]]:
    """Measurements of fruit on a sorting belt; three overlapping clusters."""
    #          mass_g  width_cm height_cm hue_deg
    centres = {"apple": (165.0, 7.4, 7.2, 20.0), "orange": (190.0, 7.9, 7.7, 35.0),
               "lemon": (120.0, 6.0, 8.1, 55.0)}
    spreads = (25.0, 0.5, 0.5, 8.0)
    rows = []
    for name, centre in centres.items():
        X = rng.normal(centre, spreads, (n_per_class, 4))
        grade = rng.choice(["A", "B", "C"], n_per_class, p=[0.5, 0.35, 0.15])
        rows += [[f"{x[0]:.1f}", f"{x[1]:.2f}", f"{x[2]:.2f}", f"{x[3]:.1f}", g, name] for x, g in zip(X, grade)]
    order = rng.permutation(len(rows))
    return ["mass_g", "width_cm", "height_cm", "hue_deg", "grade", "fruit"], [rows[i] for i in order]


def house_prices(rng: np.random.Generator, n: int = 500) -> tuple[list[str], list[list[str]]]:
    """Sale prices of made-up houses (thousands), with a neighbourhood effect."""
    area = rng.uniform(40.0, 250.0, n)
    rooms = np.clip(np.round(area / 35.0 + rng.normal(0.0, 0.8, n)), 1, 9).astype(int)
    age = rng.integers(0, 101, n)
    distance = rng.gamma(2.0, 4.0, n)
    hoods = ["centre", "north", "south", "east", "west"]
    effect = np.array([90.0, 30.0, -20.0, 0.0, 10.0])
    hood = rng.integers(0, len(hoods), n)
    price = (60.0 + 2.1 * area + 9.0 * rooms - 0.7 * age - 40.0 * np.log1p(distance) + effect[hood]
             + 0.004 * (area - 140.0) ** 2 + rng.normal(0.0, 25.0, n))
    rows = [
        [f"{area[i]:.1f}", str(rooms[i]), str(age[i]), f"{distance[i]:.2f}", hoods[hood[i]], f"{price[i]:.1f}"]
        for i in range(n)
    ]
    return ["area_m2", "rooms", "age_years", "distance_km", "neighborhood", "price_k"], rows


MAKERS = {"churn.csv": churn, "fruit.csv": fruit, "house_prices.csv": house_prices}


def main(folder: Path) -> None:
    for (name, make), seed in zip(MAKERS.items(), np.random.SeedSequence(SEED).spawn(len(MAKERS))):
        header, rows = make(np.random.default_rng(seed))
        _write(folder / name, header, rows)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
