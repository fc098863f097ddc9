#!/usr/bin/env python3
"""weaver-core's ParticleNet beside gnnjec's on the same clouds, split and target: speed, wall time, resolution.

    pip install -e '.[weaver]'                                       # weaver-core 0.5.3
    python benchmarks/weaver_comparison.py --clouds results/clouds   # after make demo
    python benchmarks/weaver_comparison.py --clouds results/clouds --family particlenet --train-jets 4000 --epochs 1

weaver-core (https://github.com/hqucms/weaver-core) is CMS's reference training framework. Both networks learn
the target of the workflow, log(pt_gen / pt_raw), with an L1 (MAE) loss, from the same jets: a fixed random subset
of the demo's train split (seed 0, as learning_curve.py takes it), one of the validation split (model selection: the
best epoch by validation loss) and the whole test split (the resolution), and both see the charged and neutral
candidates with the features of config/config.yaml, which gnnjec's ParticleNet takes as two clouds and weaver's as
one (the union of the two feature lists, in the pt order of the constituents; neither sees the secondary vertices or
the jet-level features, since weaver's ParticleNet has no input for them). Both train only on the jets with a finite
|target| < max_abs_target (weaver: its data config's selection) and at the same batch size and epochs.

gnnjec's side runs in this process as the workflow's train stage does (gnnjec.training.train, the config's training
defaults, the family's preset), then predicts the test split with the best epoch. weaver's side runs weaver itself
(python -m weaver.train) on files this script writes into --workdir: Parquet with a jagged column per
constituent feature, a data config (selection, new_variables, automatic standardisation, inputs, a custom
regression label, observers) and a network config around weaver.nn.model.ParticleNet with gnnjec's preset's k and
EdgeConv and head sizes, then weaver --predict on the test split. weaver keeps its own choices otherwise: one cloud,
its fusion block, BatchNorm without masks, its sequence trimmer, its optimiser and schedule (default Ranger, lr
5e-3, flat then decay), its standardisation (median and 16-84 % width from the training jets, clipped to +-5).

Prints one table: per network its parameters, training jets/s per epoch (median and range, the data pipeline
included), training wall time (weaver: its whole process, start-up and standardisation included), validation MAE
per epoch, test MAE, test inference jets/s, and the project's resolution numbers on the test split at |eta| < 2.5
(gnnjec.evaluate.compute_metrics, as learning_curve.py: the thesis's resolution gain over the standard correction
with its bootstrap error, and IQR/median of all jets above the summary's pt cut), beside the standard correction and
no correction at all, and what differs between the two networks. The thesis-size ParticleNet trains at about 15
jets/s on a 2-core CPU, so the default is particlenet-lite: 16 k training and 8 k validation jets, 3 epochs, 22 min
on 2 shared cores (docs/results.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import demo_inputs
import numpy as np
from machine import describe

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

REGION = "0<|eta|<2.5"
COLLECTIONS = ("charged", "neutral")
NAMES = {"gnnjec": "gnnjec", "weaver": "weaver"}  # method names in the predictions file
WEAVER_LENGTH_DEFAULT = 128


# --- weaver's inputs -------------------------------------------------------------------------------------------

def pf_name(collection: str, feature: str) -> str:
    """The merged cloud's column of one of ``collection``'s features: a feature both collections have with the same
    meaning (gnnjec.features' description) is one column; the others keep their collection in the name."""
    from gnnjec import features as F

    shared = F.CHARGED.get(feature) is not None and F.CHARGED.get(feature) == F.NEUTRAL.get(feature)
    return f"pf_{feature}" if shared else f"pf_{collection}_{feature}"


def pf_features(inputs: dict[str, list[str]]) -> list[str]:
    """The merged cloud's columns: the union of the collections' features, shared ones first."""
    names = [pf_name(c, f) for c in COLLECTIONS for f in inputs[c]]
    return list(dict.fromkeys(sorted(names, key=lambda n: (n.count("_charged_") + n.count("_neutral_"),
                                                           names.index(n)))))


def merged_cloud(data, inputs: dict[str, list[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Charged and neutral candidates of every jet of ``data`` (a gnnjec.dataset.CloudData: the features as the
    workflow computes them) as one cloud: (columns, values [points, columns] jet by jet in decreasing pt, counts);
    a collection's own features are 0 for the other's points."""
    names = pf_features(inputs)
    blocks, jets = [], []
    for c in COLLECTIONS:
        ragged = data.clouds[c]
        block = np.zeros((len(ragged.values), len(names)), np.float32)
        block[:, [names.index(pf_name(c, f)) for f in inputs[c]]] = ragged.values
        blocks.append(block)
        jets.append(np.repeat(np.arange(data.n), np.diff(ragged.offsets)))
    values, jet = np.concatenate(blocks), np.concatenate(jets)
    key = -values[:, names.index("pf_log_pt")] if "pf_log_pt" in names else np.zeros(len(values))
    order = np.lexsort((key, jet))
    return names, values[order], np.bincount(jet, minlength=data.n)


def write_weaver_parquet(clouds_path: str | Path, inputs: dict[str, list[str]], out: str | Path) -> int:
    """A clouds file as weaver reads Parquet: a jagged column per constituent feature of the merged cloud, the
    target, pt_raw and the row's index (``jet_index``, an observer to join the predictions on). Jets written."""
    import awkward as ak

    from gnnjec.dataset import CloudData

    data = CloudData(str(clouds_path), inputs, truth=("target", "pt_raw"))
    names, values, counts = merged_cloud(data, inputs)
    columns = {n: ak.unflatten(np.ascontiguousarray(values[:, i]), counts) for i, n in enumerate(names)}
    columns.update(target=data.truth["target"].astype(np.float32), pt_raw=data.truth["pt_raw"].astype(np.float32),
                   jet_index=np.arange(data.n, dtype=np.int64))
    ak.to_parquet(ak.Array(columns), str(out), row_group_size=1 << 20)
    return data.n


def data_config(inputs: dict[str, list[str]], coordinates: list[str], max_abs_target: float,
                length: int = WEAVER_LENGTH_DEFAULT) -> dict:
    """weaver's data config (YAML) for the merged cloud: weaver's conventions (points and their features
    unstandardised, the mask a new variable, everything else standardised automatically)."""
    names = pf_features(inputs)
    points = [pf_name("charged", c) for c in coordinates]
    return {
        # the jets gnnjec's training counts in its loss (gnnjec.training.trainable)
        "selection": f"(np.abs(target) < {max_abs_target}) & np.isfinite(target)",
        "test_time_selection": "jet_index >= 0",  # every test jet (without it weaver applies `selection`)
        "new_variables": {"pf_mask": "ak.ones_like(pf_log_pt)" if "pf_log_pt" in names
                          else f"ak.ones_like({points[0]})"},
        "preprocess": {"method": "auto", "data_fraction": 1.0},
        "inputs": {
            "pf_points": {"length": length, "pad_mode": "constant", "vars": [[p, None] for p in points]},
            "pf_features": {"length": length, "pad_mode": "constant",
                            "vars": [[n, None] if n in points else n for n in names]},
            "pf_mask": {"length": length, "pad_mode": "constant", "vars": [["pf_mask", None]]},
        },
        "labels": {"type": "custom", "value": {"jec_target": "target"}},
        "observers": ["jet_index"],
    }


NETWORK_CONFIG = '''\
"""weaver-core network config, written by gnnjec's benchmarks/weaver_comparison.py: weaver's own ParticleNet
(weaver.nn.model.ParticleNet) as a regressor of log(pt_gen / pt_raw) with an L1 (MAE) loss."""

import numpy as np
import torch
from weaver.nn.model.ParticleNet import ParticleNet

CONV_PARAMS = {conv_params!r}
FC_PARAMS = {fc_params!r}
USE_FUSION = {use_fusion!r}
SEED = {seed!r}  # weaver has no seed option: the initialisation and the loader's shuffling follow from this


def build(n_features, **kwargs):
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    return ParticleNet(n_features, 1, conv_params=CONV_PARAMS, fc_params=FC_PARAMS, use_fusion=USE_FUSION, **kwargs)


def get_model(data_config, **kwargs):
    model = build(len(data_config.input_dicts["pf_features"]), **kwargs)
    model_info = {{
        "input_names": list(data_config.input_names),
        "input_shapes": {{k: ((1,) + s[1:]) for k, s in data_config.input_shapes.items()}},
        "output_names": ["output"],
        "dynamic_axes": {{**{{k: {{0: "N", 2: "n_pf"}} for k in data_config.input_names}}, "output": {{0: "N"}}}},
    }}
    return model, model_info


def get_loss(data_config, **kwargs):
    return torch.nn.L1Loss()
'''


def network_config(arch: dict, dropout: float, seed: int, use_fusion: bool = True) -> str:
    """The network config's text: gnnjec's preset's k and EdgeConv and head sizes, weaver's ParticleNet."""
    conv = [(arch["k"], tuple(channels)) for channels in arch["edge_channels"]]
    fc = [(size, dropout) for size in arch["head_sizes"]]
    return NETWORK_CONFIG.format(conv_params=conv, fc_params=fc, use_fusion=use_fusion, seed=seed)


def prepare_weaver(workdir: Path, train: Path, val: Path, test: Path, inputs: dict, arch: dict, hp: dict) -> dict:
    """weaver's Parquet files, data config and network config in ``workdir``: their paths, and the jets written."""
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    paths = {split: workdir / f"{split}.parquet" for split in ("train", "val", "test")}
    jets = {split: write_weaver_parquet(src, inputs, paths[split])
            for split, src in (("train", train), ("val", val), ("test", test))}
    paths["data_config"] = workdir / "jec_data.yaml"
    paths["data_config"].write_text(yaml.safe_dump(
        data_config(inputs, arch["coordinates"], hp["max_abs_target"], hp["max_constituents"]), sort_keys=False))
    paths["network_config"] = workdir / "jec_particlenet.py"
    paths["network_config"].write_text(network_config(arch, hp["dropout"], hp["seed"]))
    return {"paths": paths, "jets": jets}


def weaver_parameters(paths: dict) -> int:
    """The parameters of the network weaver builds from the configs."""
    import importlib.util

    from weaver.utils.data.config import DataConfig

    spec = importlib.util.spec_from_file_location("jec_particlenet", paths["network_config"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model, _ = module.get_model(DataConfig.load(str(paths["data_config"]), load_observers=False))
    return sum(p.numel() for p in model.parameters())


ANSI = re.compile(r"\x1b\[[0-9;]*m")
PROCESSED = re.compile(r"Processed (\d+) entries in total \(avg\. speed ([\d.]+) entries/s\)")


def parse_weaver_log(text: str) -> dict:
    """Per epoch from weaver's log: training jets and jets/s, validation metric (the mean L1 loss); the test pass."""
    train, val, test, mode = [], [], None, None
    for line in ANSI.sub("", text).splitlines():
        if re.search(r"Epoch #\d+ training", line):
            mode = "train"
        elif re.search(r"Epoch #\d+ validating", line):
            mode = "val"
        elif "Running on test file group" in line:
            mode = "test"
        elif m := PROCESSED.search(line):
            record = {"jets": int(m.group(1)), "jets_per_second": float(m.group(2))}
            if mode == "train":
                train.append(record)
            elif mode == "test":
                test = record
            mode = None if mode != "train" else mode
        elif m := re.search(r"Epoch #(\d+): Current validation metric: ([\d.eE+-]+)", line):
            val.append(float(m.group(2)))
    return {"epochs": [{**t, "val_loss": v} for t, v in zip(train, val)], "test": test}


def run_weaver(paths: dict, workdir: Path, hp: dict, epochs: int, threads: int, workers: int,
               extra: list[str] = ()) -> dict:
    """Train with weaver (python -m weaver.train), then predict the test split; times, log numbers, predictions."""
    import awkward as ak

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    prefix = workdir / "model" / "net"
    common = ["--regression-mode", "--data-config", str(paths["data_config"]),
              "--network-config", str(paths["network_config"]), "--batch-size", str(hp["batch_size"]),
              "--gpus", "", "--num-workers", str(workers), "--fetch-step", "1"]
    train_cmd = [sys.executable, "-m", "weaver.train", *common, "--run-mode", "train,val",
                 "--data-train", str(paths["train"]), "--data-val", str(paths["val"]),
                 "--model-prefix", str(prefix), "--num-epochs", str(epochs), *extra]
    predict_cmd = [sys.executable, "-m", "weaver.train", *common, "--predict", "--data-test", str(paths["test"]),
                   "--model-prefix", f"{prefix}_best_epoch_state.pt",
                   "--predict-output", str(workdir / "predictions.parquet")]
    result = {}
    for name, cmd in (("train", train_cmd), ("predict", predict_cmd)):
        log = workdir / f"{name}.log"
        start = time.perf_counter()
        with open(log, "w") as out:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        result[f"{name}_seconds"] = time.perf_counter() - start
        if done.returncode:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            sys.exit(f"weaver_comparison.py: weaver {name} failed (exit {done.returncode}); {log}:\n{tail}")
        result[name] = parse_weaver_log(log.read_text(errors="replace"))
    predictions = ak.from_parquet(str(workdir / "predictions.parquet"))
    result["prediction"] = {"jet_index": np.asarray(predictions["jet_index"]),
                            "value": np.asarray(predictions["scores"], np.float64).reshape(-1)}
    return result


# --- gnnjec's side ---------------------------------------------------------------------------------------------

def run_gnnjec(train: Path, val: Path, test: Path, hparams: dict, inputs: dict, workdir: Path, threads: int) -> dict:
    """Train as the workflow's train stage does; predict the test split with the best epoch (torch, eval mode)."""
    import torch

    from gnnjec import checkpoint, training
    from gnnjec.dataset import CloudData

    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    summary = training.train(str(train), str(val), str(workdir / "model.pt"), str(workdir / "history.json"),
                             hparams, inputs, device="cpu", threads=threads)
    seconds = time.perf_counter() - start
    model, ckpt = checkpoint.load_model(str(workdir / "model.pt"))
    data = CloudData(str(test), inputs)
    outputs = []
    start = time.perf_counter()
    with torch.no_grad():
        for *args, _ in training.device_batches(data, np.arange(data.n), ckpt["hparams"]["batch_size"],
                                                ckpt["hparams"]["max_constituents"], torch.device("cpu")):
            outputs.append(model.point(model(*args)).numpy())
    infer = time.perf_counter() - start
    return {"train_seconds": seconds, "parameters": summary["parameters"],
            "epochs": [{"jets_per_second": e["jets_per_second"], "val_loss": e["val_loss"]} for e in summary["epochs"]],
            "test": {"jets": data.n, "jets_per_second": data.n / infer},
            "prediction": {"jet_index": np.arange(data.n), "value": np.concatenate(outputs).astype(np.float64)}}


# --- both ------------------------------------------------------------------------------------------------------

def subset(source: str, n: int, path: Path) -> int:
    """The first ``n`` jets (all: 0) of a fixed random order of ``source`` (seed 0, as learning_curve.py), as a
    clouds file."""
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    rows = np.sort(np.random.default_rng(0).permutation(table.num_rows)[:n or None])
    pq.write_table(table.take(rows), path)
    return len(rows)


def evaluate(test: Path, predictions: dict[str, dict], workdir: Path, cfg: dict, max_abs_target: float) -> dict:
    """The project's metrics of each network's test predictions beside the standard correction and none (``raw``):
    the summary of |eta| < 2.5 per method, and each network's test MAE on the jets its training counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gnnjec import evaluate as ev
    from gnnjec.training import trainable

    truth = pq.read_table(str(test), columns=list(ev.TRUTH_COLUMNS))
    columns = {k: truth.column(k).to_numpy() for k in ev.TRUTH_COLUMNS}
    pt_raw, target = columns["pt_raw"].astype(np.float64), columns["target"].astype(np.float64)
    columns[ev.corrected_column("raw")] = pt_raw.astype(np.float32)
    mae = {}
    for name, p in predictions.items():
        value = np.full(len(pt_raw), np.nan)
        value[p["jet_index"]] = p["value"]
        if np.isnan(value).any():
            sys.exit(f"weaver_comparison.py: {name} predicted {np.isfinite(value).sum()} of {len(value)} test jets")
        columns[ev.corrected_column(name)] = (pt_raw * np.exp(value)).astype(np.float32)
        ok = trainable(target, max_abs_target)
        mae[name] = float(np.mean(np.abs(value[ok] - target[ok])))
    path = workdir / "predictions.parquet"
    pq.write_table(pa.table(columns), path)
    ev.compute_metrics(str(path), str(workdir / "metrics.json"), cfg)
    summary = json.loads((workdir / "metrics.json").read_text())["summary"][REGION]
    return {"summary": summary, "test_mae": mae}


DIFFERENCES = """\
What differs (the same jets, target, loss, batch size, epochs, k and EdgeConv and head sizes):
* inputs: gnnjec two clouds, charged ({n_charged} features) and neutral ({n_neutral}), each with its own EdgeConv
  stack and kNN within the collection; weaver one cloud of both ({n_pf} columns: the shared ones, then each
  collection's own, 0 on the other's points), kNN across both. Neither sees the secondary vertices or the jet-level
  features (the workflow's gnnjec ParticleNet does; weaver's ParticleNet has no input for them)
* kNN: both in {coordinates} in the first block, then in the previous block's features, k = {k}; gnnjec never takes
  a padded point as a neighbour and masks missing neighbours of jets with <= k points; weaver moves padded points
  to 1e9 but takes them as neighbours of such jets
* EdgeConv blocks {channels}:
  gnnjec's BatchNorm over real points and edges only, weaver's over the padding too; weaver concatenates all
  blocks' outputs into a fusion layer ({fusion} channels) before pooling
* pooling: both the mean over real points (gnnjec per collection, concatenated); head {head}, dropout {dropout}
* standardisation: gnnjec in the network (median and half the 16-84 % width per feature from the training jets,
  flat columns untouched, clipped to +-5, then a masked BatchNorm); weaver in its data loader (centre and scale
  auto-computed by weaver from the training jets, clipped to +-5; {coordinates} left raw as in weaver's own configs)
  then a BatchNorm
* training: gnnjec Adam lr {lr:g}, ReduceLROnPlateau, batches padded to their longest jet per collection;
  weaver {weaver_training};
  batches padded to {length} and trimmed by its SequenceTrimmer (in training to a random 90-100 % quantile of
  the batch's lengths, dropping random constituents of longer jets)
* both keep the epoch with the lowest validation loss; weaver's validation drops the last partial batch"""


def differences(arch: dict, hp: dict, inputs: dict, weaver_args: str = "") -> str:
    fusion = sum(c[-1] for c in arch["edge_channels"])
    return DIFFERENCES.format(
        n_charged=len(inputs["charged"]), n_neutral=len(inputs["neutral"]), n_pf=len(pf_features(inputs)),
        coordinates=", ".join(arch["coordinates"]), k=arch["k"], channels=arch["edge_channels"],
        fusion=f"{fusion} -> {int(np.clip(fusion // 128 * 128, 128, 1024))}", head=arch["head_sizes"],
        dropout=hp["dropout"], lr=hp["lr"], length=hp["max_constituents"],
        weaver_training=" ".join(weaver_args.split()) or "Ranger lr 5e-3, flat then decay to 1 % over the last 30 % "
        "of the epochs (at least one)")


def spread(values: list[float]) -> str:
    v = np.asarray(values, float)
    return f"{np.median(v):,.0f} [{v.min():,.0f}-{v.max():,.0f}]" if len(v) > 1 else f"{v[0]:,.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clouds", type=Path, default=REPO / "results" / "clouds", help="train/val/test.parquet here")
    p.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    p.add_argument("--family", default="particlenet-lite", choices=["particlenet-lite", "particlenet"],
                   help="gnnjec's preset; weaver's ParticleNet gets its k and EdgeConv and head sizes")
    p.add_argument("--train-jets", type=int, default=16000, help="a fixed random subset of the train split")
    p.add_argument("--val-jets", type=int, default=8000, help="a fixed random subset of the validation split "
                   "(0: all of it), for both networks' model selection")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--threads", type=int, default=2, help="torch threads of each training")
    p.add_argument("--weaver-workers", type=int, default=1, help="weaver's --num-workers (data loader processes)")
    p.add_argument("--weaver-args", default="", help="more weaver.train arguments, e.g. '--optimizer adam "
                   "--start-lr 2e-3' (default: weaver's Ranger at lr 5e-3, flat then decay)")
    p.add_argument("--workdir", type=Path, default=REPO / "results" / "benchmarks" / "weaver",
                   help="emptied, then holds both trainings, weaver's files and logs, predictions and metrics")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    a = p.parse_args()

    try:
        import weaver  # noqa: F401
    except ImportError:
        sys.exit("weaver_comparison.py: weaver-core is not installed; pip install -e '.[weaver]'")
    from gnnjec.hparams import ARCHITECTURE_KEYS, complete
    from gnnjec.models import architecture

    config = demo_inputs.load(a.config, a.clouds, "weaver_comparison.py")
    # the training defaults without their sizes (head_sizes, phi_sizes): the family's preset, for both networks
    defaults = {k: v for k, v in config["training"]["defaults"].items() if k not in ARCHITECTURE_KEYS}
    hparams = {**defaults, "model": a.family, "epochs": a.epochs, "batch_size": a.batch_size,
               "patience": a.epochs + 1,  # every epoch, as weaver (it has no early stopping)
               "quantiles": []}  # the MAE alone, weaver's loss here (the demo's quantiles add outputs it lacks)
    hp = complete(hparams)
    arch = architecture(hp)
    inputs = {c: list(config["features"][c]) for c in COLLECTIONS} | {"jet": []}

    if a.workdir.exists():
        shutil.rmtree(a.workdir)  # weaver reuses a standardisation it finds beside its data config
    a.workdir.mkdir(parents=True)
    train, val, test = a.workdir / "train.parquet", a.workdir / "val.parquet", a.clouds / "test.parquet"
    n_train = subset(str(a.clouds / "train.parquet"), a.train_jets, train)
    subset(str(a.clouds / "val.parquet"), a.val_jets, val)
    print(f"{n_train} training jets; writing weaver's inputs", file=sys.stderr, flush=True)
    prepared = prepare_weaver(a.workdir / "weaver", train, val, test, inputs, arch, hp)

    print("training gnnjec's ParticleNet", file=sys.stderr, flush=True)
    ours = run_gnnjec(train, val, test, hparams, inputs, a.workdir / "gnnjec", a.threads)
    print("training weaver's ParticleNet", file=sys.stderr, flush=True)
    theirs = run_weaver(prepared["paths"], a.workdir / "weaver", hp, a.epochs, a.threads, a.weaver_workers,
                        a.weaver_args.split())
    theirs["parameters"] = weaver_parameters(prepared["paths"])
    theirs["epochs"] = theirs["train"]["epochs"]
    theirs["test"] = theirs["predict"]["test"]
    results = evaluate(test, {NAMES["gnnjec"]: ours["prediction"], NAMES["weaver"]: theirs["prediction"]},
                       a.workdir, config["evaluation"], hp["max_abs_target"])

    import torch

    print(f"machine: {describe(('torch', 'numpy'))}; torch threads {a.threads}")
    print(f"date: {datetime.date.today().isoformat()}; weaver-core {_version('weaver-core')}, gnnjec preset "
          f"{a.family}; {n_train} training jets (fixed subset of {a.clouds / 'train.parquet'}), "
          f"{prepared['jets']['val']} validation (fixed subset), {prepared['jets']['test']} test (all); "
          f"{a.epochs} epochs, batch {a.batch_size}; target log(pt_gen/pt_raw), L1 loss; inputs: charged + neutral "
          "candidates")
    print(f"test resolution at |eta| < 2.5 (gnnjec.evaluate.compute_metrics): the thesis's gain over the standard "
          f"correction (1 - mean over gen-pt bins of res/res_std, ± bootstrap) and IQR/median above "
          f"{config['evaluation']['summary_min_pt']} GeV")
    head = (f"{'network':<28}{'params':>9}{'train jets/s, med [range]':>27}{'train s':>9}  {'val MAE by epoch':<24}"
            f"{'test MAE':>9}{'infer jets/s':>13}{'res. gain %':>14}{'IQR/med':>9}")
    print(head)
    rows = ((f"gnnjec {a.family}", NAMES["gnnjec"], ours), ("weaver-core ParticleNet", NAMES["weaver"], theirs))
    summary = results["summary"]
    for label, name, r in rows:
        s = summary[name]
        val = " ".join(f"{e['val_loss']:.4f}" for e in r["epochs"])
        print(f"{label:<28}{r['parameters']:>9,}{spread([e['jets_per_second'] for e in r['epochs']]):>27}"
              f"{r['train_seconds']:>9.0f}  {val:<24}{results['test_mae'][name]:>9.4f}"
              f"{r['test']['jets_per_second']:>13,.0f}"
              f"{100 * s['thesis_resolution_gain']:>+9.1f} ± {100 * s['thesis_resolution_gain_err']:.1f}"
              f"{s['resolution']:>9.4f}")
    for label, name in (("standard correction", "standard"), ("no correction (pt_raw)", "raw")):
        s = summary[name]
        gain = "" if name == "standard" else (f"{100 * s['thesis_resolution_gain']:+.1f} ± "
                                              f"{100 * s['thesis_resolution_gain_err']:.1f}")
        print(f"{label:<28}{'':>9}{'':>27}{'':>9}  {'':<24}{'':>9}{'':>13}{gain:>14}{s['resolution']:>9.4f}")
    print(f"train s: the training call, validation included (weaver: its whole process, start-up and "
          f"standardisation included); weaver's predict run took {theirs['predict_seconds']:.0f} s; "
          f"torch {torch.__version__}")
    print(differences(arch, hp, inputs, a.weaver_args))
    if a.json:
        keep = ("parameters", "train_seconds", "epochs", "test")
        a.json.write_text(json.dumps({
            "machine": describe(("torch", "numpy")), "family": a.family, "train_jets": n_train, "epochs": a.epochs,
            "batch_size": a.batch_size, "gnnjec": {k: ours[k] for k in keep},
            "weaver": {**{k: theirs[k] for k in keep}, "predict_seconds": theirs["predict_seconds"]},
            "test_mae": results["test_mae"], "summary": summary}, indent=1))


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()
