#!/usr/bin/env python3
"""Successive halving against the full grid on the demo data, in one run: best validation loss and epochs spent.

    python benchmarks/search_budget.py                      # 27 random points, 9 epochs, eta 3
    python benchmarks/search_budget.py --points 9 --train-jets 20000 --workers 2

Both methods train the same points (a seeded random sample of a Kubeflow-like space over the
demo's PFN) on the same jets with the workflow's own training code. The grid trains every point
for all epochs; successive halving trains every point for the first budget, continues the best
1/eta from their saved state (``train --continue-from``) to eta times the budget, and so on.
Printed: per method the epochs trained, the wall time, the best validation loss and its point;
then the goal (halving within 1 % of the grid's best with at most 35 % of its epochs), and a
check that every halving rung's losses equal the grid's at the same epoch (continuing a training
is the same training). The demo clouds come from ``results/clouds`` (made if missing, by the
workflow's own convert rules); ``--train-jets``/``--val-jets`` take the first jets of each split.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from machine import describe

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

# the Kubeflow search's space (field facts), over the demo PFN; Katib also varied the optimiser among
# five, of which this trainer has adam and adamw
SPACE = {
    "lr": {"log_uniform": [1e-4, 1e-2]},
    "phi_sizes": {"layers": [1, 3], "units": [32, 64, 128]},
    "head_sizes": {"layers": [1, 3], "units": [32, 64, 128]},
    "dropout": {"uniform": [0.0, 0.3]},
    "optimizer": {"choice": ["adam", "adamw"]},
}
DEFAULTS = {"model": "pfn", "batch_size": 512, "patience": 100, "lr_patience": 2, "max_constituents": 128, "seed": 1}


def demo_clouds(folder: Path) -> dict[str, str]:
    paths = {s: folder / f"{s}.parquet" for s in ("train", "val")}
    if not all(p.exists() for p in paths.values()):
        print("making the demo clouds with the workflow ...", flush=True)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "-q",
                        *(str(p.relative_to(REPO)) for p in paths.values())], cwd=REPO, env=env, check=True)
    return {s: str(p) for s, p in paths.items()}


def first_jets(path: str, n: int, out: Path) -> str:
    """The first ``n`` jets of a clouds file, in row groups of 5000 (so that training streams windows)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if n and n < table.num_rows:
        table = table.slice(0, n)
    pq.write_table(table, out, row_group_size=5000)
    return str(out)


def train_point(job: tuple) -> dict:
    from gnnjec import features, training

    name, hp, data, folder, until, continue_from = job
    folder = Path(folder)
    summary = training.train(data["train"], data["val"], str(folder / "model.pt"), str(folder / "history.json"),
                             hp, features.DEFAULT_INPUTS, device="cpu", threads=1, until_epoch=until,
                             continue_from=continue_from, state_path=str(folder / "state.pt") if until else None)
    return {"name": name, "best_val_loss": summary["best_val_loss"], "trained": summary["trained_epochs"],
            "val_losses": [e["val_loss"] for e in summary["epochs"]]}


def run_all(jobs: list[tuple], workers: int) -> list[dict]:
    if workers <= 1:
        return [train_point(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(train_point, jobs))


def replay(grid: dict[str, dict], plan: list[dict]) -> dict:
    """Successive halving on the grid's own per-epoch losses: exact, because continuing a training
    from its saved state is the same training (the run below checks it epoch by epoch)."""
    from gnnjec import search

    entrants, reached, epochs = list(grid), {}, 0
    previous = 0
    for rung in plan:
        b = rung["epochs"]
        epochs += len(entrants) * (b - previous)
        for n in entrants:
            reached[n] = {"best_val_loss": min(grid[n]["val_losses"][:b])}
        if rung["rung"] + 1 < len(plan):
            entrants = search.promote({n: reached[n] for n in entrants}, plan[rung["rung"] + 1]["points"])
        previous = b
    best = search.rank(reached)[0]
    return {"best": best, "best_val_loss": reached[best]["best_val_loss"], "epochs": epochs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clouds", type=Path, default=REPO / "results" / "clouds")
    p.add_argument("--points", type=int, default=27)
    p.add_argument("--epochs", type=int, default=9)
    p.add_argument("--eta", type=int, default=3)
    p.add_argument("--min-epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the random sample of the space")
    p.add_argument("--train-jets", type=int, default=40_000, help="0: the whole training split")
    p.add_argument("--val-jets", type=int, default=15_000, help="0: the whole validation split")
    p.add_argument("--workers", type=int, default=2, help="points trained side by side (one CPU thread each)")
    p.add_argument("--schedule", choices=("plateau", "cosine"), default="plateau",
                   help="learning-rate schedule of every point (cosine: planned over all epochs)")
    a = p.parse_args()

    from gnnjec import search

    print(f"machine: {describe(('torch',))}")
    source = demo_clouds(a.clouds)
    points = search.random_points({**DEFAULTS, "epochs": a.epochs, "schedule": a.schedule}, SPACE, a.points, a.seed)
    plan = search.halving_plan(len(points), a.epochs, a.eta, a.min_epochs)
    with tempfile.TemporaryDirectory(prefix="gnnjec-search-") as tmp:
        work = Path(tmp)
        data = {"train": first_jets(source["train"], a.train_jets, work / "train.parquet"),
                "val": first_jets(source["val"], a.val_jets, work / "val.parquet")}
        print(f"{len(points)} points, {a.epochs} epochs, plan {[(r['epochs'], r['points']) for r in plan]}; "
              f"jets: train {a.train_jets or 'all'}, val {a.val_jets or 'all'}; {a.schedule} schedule; "
              f"{a.workers} workers", flush=True)

        start = time.perf_counter()
        grid = {r["name"]: r for r in run_all(
            [(n, hp, data, str(work / "grid" / n), None, None) for n, hp in points.items()], a.workers)}
        grid_seconds = time.perf_counter() - start

        print(f"\nother plans, replayed on the grid's losses ({len(points)} points, {a.epochs} epochs):")
        print(f"{'eta':>4}{'min ep.':>8}  {'budgets':<16}{'epochs':>7}{'share':>7}{'gap':>8}")
        grid_best = min(r["best_val_loss"] for r in grid.values())
        for eta in (2, 3, 4):
            for min_epochs in (1, 2, 3):
                other = search.halving_plan(len(points), a.epochs, eta, min_epochs)
                r = replay(grid, other)
                print(f"{eta:>4}{min_epochs:>8}  {str([x['epochs'] for x in other]):<16}{r['epochs']:>7}"
                      f"{100 * r['epochs'] / (len(points) * a.epochs):>6.0f}%"
                      f"{100 * (r['best_val_loss'] / grid_best - 1):>+7.2f}%")

        start = time.perf_counter()
        entrants, halving, consistent = list(points), {}, True
        for rung in plan:
            r = rung["rung"]
            jobs = [(n, points[n], data, str(work / "halving" / n / f"rung{r}"), rung["epochs"],
                     str(work / "halving" / n / f"rung{r - 1}" / "state.pt") if r else None) for n in entrants]
            for result in run_all(jobs, a.workers):
                previous = halving.get(result["name"], {"trained": 0})
                halving[result["name"]] = {**result, "trained": previous["trained"] + result["trained"]}
                n_epochs = len(result["val_losses"])
                consistent &= result["val_losses"] == grid[result["name"]]["val_losses"][:n_epochs]
            if r + 1 < len(plan):
                entrants = search.promote({n: halving[n] for n in entrants}, plan[r + 1]["points"])
        halving_seconds = time.perf_counter() - start

    rows = []
    for method, results, seconds in (("grid", grid, grid_seconds), ("halving", halving, halving_seconds)):
        best = search.rank(results)[0]
        rows.append({"method": method, "epochs": sum(r["trained"] for r in results.values()), "seconds": seconds,
                     "best_val_loss": results[best]["best_val_loss"], "best": best})
    print(f"\n{'method':<9}{'epochs':>8}{'wall s':>9}{'best val loss':>15}  best point")
    for row in rows:
        print(f"{row['method']:<9}{row['epochs']:>8}{row['seconds']:>9.0f}{row['best_val_loss']:>15.5f}  {row['best']}")
    g, h = rows
    gap = h["best_val_loss"] / g["best_val_loss"] - 1
    share = h["epochs"] / g["epochs"]
    grid_rank = search.rank(grid).index(h["best"]) + 1
    print(f"\nhalving's best is {100 * gap:+.2f} % from the grid's (goal within 1 %), with {100 * share:.0f} % of "
          f"its epochs (goal at most 35 %): {'met' if gap <= 0.01 and share <= 0.35 else 'NOT met'}")
    print(f"halving's best point is number {grid_rank} of {len(grid)} in the grid's ranking")
    print(f"every rung's losses equal the grid's at the same epoch: {'yes' if consistent else 'NO'}")
    replayed = replay(grid, plan)
    same = (replayed["best"], replayed["epochs"]) == (h["best"], h["epochs"])
    print(f"replaying this plan on the grid's losses gives the run's result: {'yes' if same else 'NO'}")
    print(json.dumps({"rows": rows, "gap": gap, "epoch_share": share,
                      "grid_val_losses": {n: r["val_losses"] for n, r in grid.items()}}))


if __name__ == "__main__":
    main()
