"""Train every rule on the digits' training split and print held-out accuracy and cost.

Usage: ``python -m gardenpath.models.rules [--seed N] [--rules a,b]``.
"""

from __future__ import annotations

import argparse

from gardenpath.data import load_digits_split
from gardenpath.models.rules import RULES, make_rule


def evaluate(names: list[str], seed: int = 0) -> list[dict]:
    """Fit each named rule with its defaults; return one row per rule."""
    xtr, xte, ytr, yte = load_digits_split(test_fraction=0.3, seed=seed)
    rows = []
    for name in names:
        rule = make_rule(name)
        rep = rule.fit(xtr, ytr, seed=seed)
        rows.append({"rule": name, "test_accuracy": rule.score(xte, yte), "passes": rep.passes,
                     "weight_updates": rep.weight_updates, "presentations": rep.presentations,
                     "train_time_s": rep.train_time_s,
                     "nonlocal_bytes_per_example": rule.nonlocal_bytes_per_example(xtr.shape[1])})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rules", default=",".join(RULES))
    args = parser.parse_args(argv)
    rows = evaluate(args.rules.split(","), args.seed)
    print(f"{'rule':<20}{'accuracy':>9}{'passes':>8}{'updates':>9}{'shown':>9}{'time_s':>8}"
          f"{'nonlocal_B':>11}")
    for r in rows:
        print(f"{r['rule']:<20}{r['test_accuracy']:>9.4f}{r['passes']:>8}{r['weight_updates']:>9}"
              f"{r['presentations']:>9}{r['train_time_s']:>8.2f}"
              f"{r['nonlocal_bytes_per_example']:>11}")


if __name__ == "__main__":
    main()
