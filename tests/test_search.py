"""The search: points (grid, random), successive halving's plan and promotions, the outcome table,
and training continued budget by budget."""

import json

import pytest
import torch

from gnnjec import checkpoint, features, search, training
from gnnjec.errors import InputError

SPACE = {"lr": {"log_uniform": [1e-4, 1e-2]}, "dropout": {"uniform": [0.0, 0.5]},
         "phi_sizes": {"layers": [1, 5], "units": [50, 100, 200, 400]}, "optimizer": {"choice": ["adam", "adamw"]},
         "k": {"int_uniform": [4, 16]}}


def test_random_points_are_seeded_inside_the_space_and_named_by_their_values():
    first = search.random_points({"model": "pfn", "epochs": 9}, SPACE, 20, seed=5)
    again = search.random_points({"model": "pfn", "epochs": 9}, SPACE, 20, seed=5)
    other = search.random_points({"model": "pfn", "epochs": 9}, SPACE, 20, seed=6)
    assert first == again and first != other and len(first) == 20
    more = search.random_points({"model": "pfn", "epochs": 9}, SPACE, 25, seed=5)
    assert list(more)[:20] == list(first)  # asking for more keeps the first ones
    for name, hp in first.items():
        assert name == search.point_name(hp) and name.startswith("pfn-")
        assert 1e-4 <= hp["lr"] <= 1e-2 and 0 <= hp["dropout"] <= 0.5 and hp["optimizer"] in ("adam", "adamw")
        assert 1 <= len(hp["phi_sizes"]) <= 5 and len(set(hp["phi_sizes"])) == 1
        assert hp["phi_sizes"][0] in (50, 100, 200, 400)
        assert 4 <= hp["k"] <= 16 and isinstance(hp["k"], int)
    # log-uniform: about as many draws in each decade
    lrs = [hp["lr"] for hp in search.random_points({"model": "pfn"}, {"lr": SPACE["lr"]}, 400, seed=1).values()]
    assert 150 < sum(lr < 1e-3 for lr in lrs) < 250


def test_a_small_space_gives_each_point_once():
    points = search.random_points({"model": "pfn"}, {"batch_size": {"choice": [128, 256]}}, 5)
    assert sorted(hp["batch_size"] for hp in points.values()) == [128, 256]


def test_grid_names_do_not_change_when_the_grid_grows():
    before = search.grid({"model": "pfn", "lr": 0.1}, {"lr": [0.001, 0.01]})
    after = search.grid({"model": "pfn", "lr": 0.1}, {"lr": [0.001, 0.01, 0.1]})
    assert set(before) < set(after) and len(after) == 3


@pytest.mark.parametrize("n, epochs, eta, min_epochs, budgets, sizes", [
    (27, 9, 3, 1, [1, 3, 9], [27, 9, 3]),
    (27, 12, 3, 1, [1, 4, 12], [27, 9, 3]),
    (4, 4, 2, 1, [1, 2, 4], [4, 2, 1]),
    (10, 12, 2, 2, [3, 6, 12], [10, 5, 2]),
    (5, 2, 3, 1, [2], [5]),  # too few epochs to halve: one rung, everything to the end
    (2, 27, 3, 1, [1, 3, 9, 27], [2, 1, 1, 1]),  # never fewer than one point
])
def test_halving_plan(n, epochs, eta, min_epochs, budgets, sizes):
    plan = search.halving_plan(n, epochs, eta, min_epochs)
    assert [r["epochs"] for r in plan] == budgets and [r["points"] for r in plan] == sizes
    assert [r["rung"] for r in plan] == list(range(len(plan)))


def _histories(tmp_path, losses):
    paths = {}
    for name, (loss, epochs) in losses.items():
        paths[name] = str(tmp_path / f"{name}.json")
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "best_val_loss": loss, "parameters": 10, "epochs": [{}] * epochs,
            "hparams": {"model": "pfn", "lr": loss * 10, "seed": 1}}))
    return paths


def test_promotion_keeps_the_best_and_breaks_ties_by_name(tmp_path):
    paths = _histories(tmp_path, {"c": (0.04, 1), "a": (0.05, 1), "b": (0.03, 1), "d": (0.04, 1)})
    decision = search.promotion(paths, keep=2, rung=0)
    assert decision["promoted"] == ["b", "c"]
    assert [r["name"] for r in decision["ranking"]] == ["b", "c", "d", "a"]


def test_select_best_and_the_outcome_table(tmp_path):
    paths = _histories(tmp_path, {"a": (0.05, 1), "b": (0.03, 4), "c": (0.04, 2)})
    choice = search.select_best(paths)
    assert choice["best"] == "b" and [r["name"] for r in choice["ranking"]] == ["b", "c", "a"]
    assert choice["total_epochs"] == 7
    lines = search.outcome_table(choice).splitlines()
    assert lines[0].split("\t") == ["rank", "point", "best_val_loss", "epochs", "parameters", "lr"]  # only what varies
    assert lines[1].split("\t")[:4] == ["1", "b", "0.030000", "4"]


def test_a_missing_history_is_refused_naming_it(tmp_path):
    with pytest.raises(InputError, match=r"nope\.json: no such file; rerun the training of point x"):
        search.select_best({"x": str(tmp_path / "nope.json")})


HP = {"model": "pfn", "phi_sizes": [16, 32], "head_sizes": [32, 16], "epochs": 4, "batch_size": 256,
      "max_constituents": 64, "lr": 0.005, "patience": 10, "dropout": 0.1, "schedule": "cosine"}


def test_budget_after_budget_is_the_training_that_runs_straight_through(synthetic_clouds, tmp_path):
    def fit(out, **kwargs):
        return training.train(synthetic_clouds["train"], synthetic_clouds["val"], str(out / "model.pt"),
                              str(out / "history.json"), HP, features.DEFAULT_INPUTS, threads=1, **kwargs)

    whole = fit(tmp_path / "whole")
    first = fit(tmp_path / "rung0", until_epoch=1, state_path=str(tmp_path / "rung0" / "state.pt"))
    assert len(first["epochs"]) == 1 and not first["finished"] and not (tmp_path / "rung0" / "last.pt").exists()
    second = fit(tmp_path / "rung1", until_epoch=4, continue_from=str(tmp_path / "rung0" / "state.pt"),
                 state_path=str(tmp_path / "rung1" / "state.pt"))
    assert second["resumed_after_epoch"] == 1 and second["trained_epochs"] == 3 and second["finished"]
    assert second["epochs"][0] == first["epochs"][0]  # carried over, not trained again (same timing too)
    for a, b in zip(whole["epochs"], second["epochs"], strict=True):
        assert (a["train_loss"], a["val_loss"], a["lr"]) == (b["train_loss"], b["val_loss"], b["lr"])
    final_whole, _ = checkpoint.load_model(str(tmp_path / "whole" / "model.pt"))
    final_rungs, _ = checkpoint.load_model(str(tmp_path / "rung1" / "model.pt"))
    assert all(torch.equal(a, b) for a, b in zip(final_whole.state_dict().values(), final_rungs.state_dict().values()))

    # a rung continuing from another point's state is refused: it would mix two trainings
    with pytest.raises(InputError, match="other hyperparameters or data files"):
        training.train(synthetic_clouds["train"], synthetic_clouds["val"], str(tmp_path / "x" / "model.pt"),
                       str(tmp_path / "x" / "history.json"), {**HP, "lr": 0.001}, features.DEFAULT_INPUTS,
                       threads=1, until_epoch=2, continue_from=str(tmp_path / "rung0" / "state.pt"))
    assert not (tmp_path / "x" / "model.pt").exists()


def test_a_checkpoint_that_would_run_code_is_not_loaded(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))

    path = tmp_path / "model.pt"
    torch.save({"hparams": Payload()}, path)
    with pytest.raises(InputError, match=r"model.pt: not a checkpoint of this workflow \(UnpicklingError: ") as err:
        checkpoint.load_model(str(path))
    assert "weights_only" not in str(err.value) and path.exists()  # no advice to run it; the user's file kept
