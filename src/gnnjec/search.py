"""Hyperparameter search: which points to train, and for how long.

* :func:`grid` expands ``training.grid`` (every combination of its lists);
* :func:`random_points` draws ``training.random.points`` from a search space, seeded;
* :func:`halving_plan` and :func:`promote` are synchronous successive halving: every point trains
  a small budget of epochs, the best 1/eta by validation loss go on to eta times the budget
  (continuing their own training, never starting it again), and so on until ``epochs``.

A point's name is ``<model>-<hash of its hyperparameters>``: the same hyperparameters always give
the same name (so the same outputs), and the name is safe in paths and shell commands whatever the
values are. This module needs no torch: the Snakefile imports it to plan the DAG.
"""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np

from . import hparams
from .command import Command
from .files import canonical_json


def point_name(hp: dict) -> str:
    """``<model>-<8 hex digits of the hyperparameters' hash>``; the model is one of the known presets."""
    return f"{hp['model']}-{hashlib.sha1(canonical_json(hp).encode()).hexdigest()[:8]}"


def grid(defaults: dict, lists: dict | None) -> dict[str, dict]:
    """Every combination of ``lists`` over ``defaults``, by name.

    Adding a value to a list adds points without renaming (and so retraining) the existing ones.
    """
    lists = lists or {}
    keys = sorted(lists)
    points = {}
    for values in itertools.product(*(lists[k] for k in keys)):
        hp = {**defaults, **dict(zip(keys, values))}
        points[point_name(hp)] = hp
    return points


def _round(x: float, digits: int = 3) -> float:
    """``x`` to ``digits`` significant digits (readable tables; equal draws give equal names)."""
    return float(f"{x:.{digits}g}")


def draw(spec: dict, rng: np.random.Generator):
    """One value from a search-space entry (see the schema: choice, uniform, log_uniform, int_uniform, layers)."""
    if "layers" in spec:  # that many layers, all of one size chosen from units (as the Kubeflow search did)
        lo, hi = spec["layers"]
        units = spec["units"]
        size = int(units[int(rng.integers(len(units)))])
        return [size] * int(rng.integers(lo, hi + 1))
    ((kind, arg),) = spec.items()
    if kind == "choice":
        return arg[int(rng.integers(len(arg)))]
    lo, hi = arg
    if kind == "uniform":
        return _round(rng.uniform(lo, hi))
    if kind == "log_uniform":
        return _round(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return int(rng.integers(lo, hi + 1))  # int_uniform


def random_points(defaults: dict, space: dict, n: int, seed: int = 0) -> dict[str, dict]:
    """``n`` distinct points drawn from ``space`` over ``defaults`` (fewer if the space has fewer).

    The same space, ``n`` and seed give the same points; a larger ``n`` keeps the first ones.
    """
    rng = np.random.default_rng(seed)
    points: dict[str, dict] = {}
    for _ in range(50 * n):
        if len(points) == n:
            break
        hp = {**defaults, **{key: draw(space[key], rng) for key in sorted(space)}}
        points.setdefault(point_name(hp), hp)
    return points


def halving_plan(n_points: int, epochs: int, eta: int = 3, min_epochs: int = 1) -> list[dict]:
    """The rungs of synchronous successive halving: per rung the epoch budget (epochs done by its
    end, counted from the start of the training) and how many points train in it.

    Budgets grow by ``eta`` from about ``min_epochs`` up to ``epochs``; each rung keeps the best
    ``1/eta`` of the previous one (at least one point).
    """
    rungs = max(0, math.floor(math.log(epochs / min_epochs, eta) + 1e-9)) if epochs > min_epochs else 0
    plan, n = [], n_points
    for r in range(rungs + 1):
        budget = max(1, round(epochs / eta ** (rungs - r)))
        if plan and budget <= plan[-1]["epochs"]:
            budget = plan[-1]["epochs"] + 1
        plan.append({"rung": r, "epochs": min(budget, epochs), "points": n})
        n = max(1, n // eta)
    return plan


def added_epochs(plan: list[dict]) -> list[int]:
    """Per rung of a plan, the epochs its jobs add to a point's training."""
    return [rung["epochs"] - (plan[r - 1]["epochs"] if r else 0) for r, rung in enumerate(plan)]


def legs_plan(n_points: int, epochs: int, legs: int) -> list[dict]:
    """A training cut into ``legs`` jobs of consecutive epochs, every point going on in each (the rungs of
    :func:`halving_plan` with nobody left out): each leg continues from the state the last one ended with."""
    legs = max(1, min(legs, epochs))
    return [{"rung": r, "epochs": round(epochs * (r + 1) / legs), "points": n_points} for r in range(legs)]


def rank(results: dict[str, dict]) -> list[str]:
    """Point names by best validation loss so far (ties by name, so the order is reproducible)."""
    return sorted(results, key=lambda name: (results[name]["best_val_loss"], name))


def promote(results: dict[str, dict], keep: int) -> list[str]:
    """The ``keep`` best points of a rung (``results``: name -> its training summary)."""
    return rank(results)[:keep]


def summaries(histories: dict[str, str]) -> dict[str, dict]:
    """Each point's training summary (the train stage's history.json), read; a missing or unreadable
    one is refused naming the file."""
    from .files import read_json

    return {name: read_json(path, "training history (JSON)", f"rerun the training of point {name}",
                               keys=("epochs", "best_val_loss", "hparams"))
            for name, path in histories.items()}


def promotion(histories: dict[str, str], keep: int, rung: int) -> dict:
    """The decision after a rung: every entrant's result, and the ``keep`` best that go on."""
    results = summaries(histories)
    order = rank(results)
    return {"rung": rung, "keep": keep, "promoted": order[:keep],
            "ranking": [{"name": n, "best_val_loss": results[n]["best_val_loss"], "epochs": len(results[n]["epochs"]),
                         "finished": results[n].get("finished", True)} for n in order]}


def select_best(histories: dict[str, str]) -> dict:
    """The point with the lowest validation loss overall and in each model family (pfn, particlenet, ...),
    with every point's outcome, best first."""
    from .errors import ConfigError

    if not histories:
        raise ConfigError("training.grid", "no points to choose from; add at least one")
    results = summaries(histories)
    ranking = [{"name": n, "best_val_loss": results[n]["best_val_loss"], "parameters": results[n]["parameters"],
                "epochs": len(results[n]["epochs"]), "hparams": results[n]["hparams"],
                "history": histories[n]} for n in rank(results)]
    families = {}
    for r in ranking:  # best first: each model family's first point is its best
        families.setdefault(r["hparams"]["model"], r["name"])
    return {"best": ranking[0]["name"], "families": families, "ranking": ranking,
            "total_epochs": sum(r["epochs"] for r in ranking)}


def outcome_table(choice: dict) -> str:
    """One line per point (best first): name, validation loss, epochs trained, parameters, and the
    hyperparameters that differ between points; tab-separated, with a header."""
    ranking = choice["ranking"]
    varied = hparams.varied([r["hparams"] for r in ranking])
    lines = ["\t".join(["rank", "point", "best_val_loss", "epochs", "parameters", *varied])]
    for i, r in enumerate(ranking, 1):
        values = [canonical_json(r["hparams"].get(k)) for k in varied]
        lines.append("\t".join([str(i), r["name"], f"{r['best_val_loss']:.6f}", str(r["epochs"]), str(r["parameters"]),
                                *values]))
    return "\n".join(lines) + "\n"


def _histories_arguments(p) -> None:
    p.add_argument("histories", nargs="+", metavar="NAME=HISTORY")
    p.add_argument("--output", required=True)


def _promote_arguments(p) -> None:
    _histories_arguments(p)
    p.add_argument("--keep", type=int, required=True)
    p.add_argument("--rung", type=int, required=True)


def _promote(a) -> None:
    import logging

    from .command import named_paths, write_json

    decision = promotion(named_paths(a.histories), a.keep, a.rung)
    write_json(a.output, decision)
    logging.getLogger(__name__).info("rung %d: %d of %d points go on: %s", a.rung, len(decision["promoted"]),
                                     len(decision["ranking"]), ", ".join(decision["promoted"]))


def _select_arguments(p) -> None:
    _histories_arguments(p)
    p.add_argument("--table", default=None, help="output: every point's outcome, tab-separated")


def _select(a) -> None:
    import logging
    from pathlib import Path

    from .command import named_paths, write_json
    from .files import atomic_output

    choice = select_best(named_paths(a.histories))
    if a.table:
        with atomic_output(a.table) as tmp:
            Path(tmp).write_text(outcome_table(choice))
    write_json(a.output, choice)
    logging.getLogger(__name__).info("best point: %s (of %d; %d epochs trained in all)", choice["best"],
                                     len(choice["ranking"]), choice["total_epochs"])


COMMANDS = {"promote": Command(_promote_arguments, _promote, reads=("histories",), outputs=("output",)),
        "select-model": Command(_select_arguments, _select, reads=("histories",), outputs=("output", "table"))}
