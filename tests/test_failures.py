"""Nothing lost, nothing silent: damaged inputs, late failures, kills, unsafe checkpoints, provenance.

Every failure is driven through the command line the Snakemake rules call, as a user would meet it:
one ``gnnjec <stage>: error:`` line naming the file, branch or key, and no output left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot

from gnnjec import errors, features, files, nanoaod, provenance
from gnnjec.checkpoint import load_model

SELECT_ALL = json.dumps({"min_gen_pt": 0, "require_gen_match": False})


def gnnjec(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gnnjec", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kwargs)


def error_line(proc: subprocess.CompletedProcess, stage: str, status: int = 2) -> str:
    """The single error line a failed stage ends with (log lines above it carry a timestamp)."""
    assert proc.returncode == status, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith(f"gnnjec {stage}:")]
    assert len(lines) == 1 and proc.stderr.strip().splitlines()[-1] == lines[0], proc.stderr[-3000:]
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Hidden temporaries of atomic outputs."""
    return sorted(p.name for p in folder.rglob(".*.tmp*"))


# --- damaged NanoAOD -----------------------------------------------------------------------------

def read_events(path) -> dict:
    """The branches the convert stage reads, as {collection: zipped jagged record, flat branch: array}, to edit
    and write back (all 1186 branches of pfnano.root would take uproot 11 s to write). A collection is a
    prefix with a counter branch (``nJet`` for ``Jet_*``); write_events writes the counters again."""
    tree = uproot.open(path)["Events"]
    wanted = nanoaod.branches_to_read(nanoaod.branch_map(tree, str(path)))
    arrays = tree.arrays(wanted)
    counted = {name[1:] for name in tree.keys() if name.startswith("n")}
    out, collections = {}, {}
    for name in wanted:
        prefix, _, field = name.partition("_")
        if prefix in counted and field:
            collections.setdefault(prefix, {})[field] = arrays[name]
        else:
            out[name] = arrays[name]
    return {**out, **{prefix: ak.zip(record) for prefix, record in collections.items()}}


def write_events(path, branches: dict) -> None:
    types = {k: v.type.content if isinstance(v, ak.Array) and v.ndim > 1 else
             (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in branches.items()}
    with uproot.recreate(path) as f:
        f.mktree("Events", types, field_name=lambda outer, inner: f"{outer}_{inner}", counter_name=lambda c: f"n{c}")
        f["Events"].extend(branches)


def with_value(record: ak.Array, field: str, event: int, index: int, value: float) -> ak.Array:
    """``record[field][event][index] = value`` on a copy."""
    counts = ak.num(record[field])
    flat = ak.to_numpy(ak.flatten(record[field])).copy()
    flat[int(np.sum(counts[:event])) + index] = value
    return ak.with_field(record, ak.unflatten(flat, counts), field)


@pytest.fixture(scope="module")
def pfnano_events(cms_file):
    return read_events(cms_file("pfnano.root"))


def damaged_file(pfnano_events, folder: Path, collection: str, field: str, value) -> Path:
    """pfnano.root with ``value`` in ``collection_field`` of the first jet of event 0 (a PFCands field: of its first
    constituent, a linked candidate), written to ``folder``/damaged.root."""
    events = dict(pfnano_events)
    index = int(ak.to_numpy(events["JetPFCands"].pFCandsIdx[0])[0]) if collection == "PFCands" else 0
    events[collection] = with_value(events[collection], field, 0, index, value)
    damaged = folder / "damaged.root"
    write_events(damaged, events)
    return damaged


@pytest.mark.parametrize("collection, field, value", [("Jet", "pt", np.nan), ("Jet", "rawFactor", np.inf),
                                                      ("PFCands", "pt", np.nan)])
def test_non_finite_kinematics_are_refused_naming_the_branch(pfnano_events, tmp_path, collection, field, value):
    damaged = damaged_file(pfnano_events, tmp_path, collection, field, value)
    out = tmp_path / "clouds.parquet"
    line = error_line(gnnjec("convert", damaged, "--output", out, "--selection", SELECT_ALL), "convert")
    assert f"branch {collection}_{field} is NaN or infinite for 1 jets" in line and str(damaged) in line, line
    assert "jet 0 of event" in line and "selection.invalid_jets: drop" in line, line
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("collection, field, value, why", [
    ("Jet", "pt", -30.0, "zero or negative"), ("Jet", "pt", 0.0, "zero or negative"),
    ("Jet", "rawFactor", 1.0, "1 or more (a raw pt of zero or less)"), ("Jet", "eta", 7.0, "beyond |eta| 5.5"),
    ("PFCands", "pt", -1.0, "zero or negative"), ("PFCands", "charge", 2, "not -1, 0 or 1"),
    ("PFCands", "eta", -9.0, "beyond |eta| 5.5"),
])
def test_impossible_finite_values_are_refused_naming_the_branch(pfnano_events, tmp_path, collection, field, value,
                                                                 why):
    """Values no detector gives (the real file itself passes: its rawFactor goes down to -0.56, a correction below
    one, which is physical)."""
    damaged = damaged_file(pfnano_events, tmp_path, collection, field, value)
    out = tmp_path / "clouds.parquet"
    line = error_line(gnnjec("convert", damaged, "--output", out, "--selection", SELECT_ALL), "convert")
    assert f"branch {collection}_{field} is {why} for 1 jets (first: jet 0 of event" in line, line
    assert not out.exists() and leftovers(tmp_path) == []
    dropped = gnnjec("convert", damaged, "--output", out, "--selection",
                     json.dumps({**json.loads(SELECT_ALL), "invalid_jets": "drop"}))
    assert dropped.returncode == 0 and f"{collection}_{field} 1" in dropped.stderr
    assert pq.read_metadata(out).num_rows == 64 - 1


def test_invalid_jets_are_dropped_and_counted_when_asked(pfnano_events, cms_file, tmp_path):
    events = dict(pfnano_events)
    events["Jet"] = with_value(events["Jet"], "pt", 0, 0, np.nan)
    events["Jet"] = with_value(events["Jet"], "eta", 1, 1, -np.inf)
    jet_in_event_2 = int(ak.to_numpy(events["JetPFCands"].pFCandsIdx[2])[0])
    events["PFCands"] = with_value(events["PFCands"], "phi", 2, jet_in_event_2, np.nan)
    damaged = tmp_path / "damaged.root"
    write_events(damaged, events)
    out = tmp_path / "clouds.parquet"
    selection = json.dumps({**json.loads(SELECT_ALL), "invalid_jets": "drop"})
    proc = gnnjec("convert", damaged, "--output", out, "--selection", selection)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dropped 3 invalid jets" in proc.stderr and "Jet_pt 1" in proc.stderr and "Jet_eta 1" in proc.stderr
    assert "PFCands_phi 1" in proc.stderr
    clouds = ak.from_parquet(out)
    assert len(clouds) == 64 - 3  # pfnano.root has 64 jets
    for name in ("pt_raw", "eta", "phi", "target"):
        values = np.asarray(clouds[name])
        assert np.all(np.isfinite(values[~np.isnan(np.asarray(clouds.pt_gen))])), name
    assert np.all(np.isfinite(np.asarray(ak.flatten(clouds.charged.dphi))))
    # the clean file converts all 64
    clean = tmp_path / "clean.parquet"
    assert gnnjec("convert", cms_file("pfnano.root"), "--output", clean, "--selection", selection).returncode == 0
    assert pq.read_metadata(clean).num_rows == 64


def test_jet_whose_constituent_links_are_missing_is_refused(pfnano_events, tmp_path):
    events = dict(pfnano_events)
    links = events["JetPFCands"]
    keep = links.jetIdx != 0  # every link of the first jet of each event is lost
    events["JetPFCands"] = links[keep]
    damaged = tmp_path / "damaged.root"
    write_events(damaged, events)
    line = error_line(gnnjec("convert", damaged, "--output", tmp_path / "c.parquet", "--selection", SELECT_ALL),
                      "convert")
    assert "JetPFCands links disagree with branch Jet_nConstituents" in line and "jet 0 of event" in line, line


# --- direct command line: unknown keys, unreadable and stale inputs --------------------------------

@pytest.mark.parametrize("option, value, key", [
    ("--split", '{"train": 0.7, "vall": 0.1}', "split.vall"),
    ("--selection", '{"min_pt": 20}', "selection.min_pt"),
    ("--selection", '{"invalid_jets": "ignore"}', "selection.invalid_jets"),
])
def test_unknown_config_keys_on_the_command_line_are_refused(cms_file, tmp_path, option, value, key):
    out = tmp_path / "c.parquet"
    line = error_line(gnnjec("convert", cms_file("pfnano.root"), "--output", out, option, value), "convert")
    assert f"config key {key}" in line, line
    assert not out.exists()


@pytest.fixture()
def not_parquet(tmp_path):
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"this is not a Parquet file\n" * 10)
    return path


def test_merge_names_a_missing_or_unreadable_part(synthetic_clouds, not_parquet, tmp_path):
    outs = {s: tmp_path / f"{s}.parquet" for s in ("train", "val", "test")}
    args = [f"--{k}={v}" for k, v in outs.items()]
    line = error_line(gnnjec("merge-clouds", synthetic_clouds["all"], not_parquet, *args), "merge-clouds")
    assert str(not_parquet) in line and "not a readable clouds Parquet file" in line and "convert" in line, line
    missing = tmp_path / "missing.parquet"
    line = error_line(gnnjec("merge-clouds", synthetic_clouds["all"], missing, *args), "merge-clouds")
    assert str(missing) in line and "run the convert stage" in line, line
    assert not any(p.exists() for p in outs.values()) and leftovers(tmp_path) == []


@pytest.mark.parametrize("stage, args", [
    ("convert", ["JUNK", "--output", "OUT/c.parquet"]),
    ("synthetic-pfnano", ["--events", "10", "--seed", "1", "--file-index", "0", "--jec", "JUNK",
                          "--output", "OUT/s.root"]),
    ("select-model", ["p=JUNK", "--output", "OUT/best.json", "--table", "OUT/points.tsv"]),
    ("promote", ["p=JUNK", "--keep", "1", "--rung", "0", "--output", "OUT/rung0.json"]),
    ("export-onnx", ["--selection", "JUNK", "--family", "pfn", "--models", "p=JUNK", "--clouds", "JUNK",
                     "--onnx", "OUT/m.onnx", "--check", "OUT/c.json"]),
    ("evaluate", ["--onnx", "pfn=JUNK", "--clouds", "JUNK", "--predictions", "OUT/p.parquet", "--metrics",
                  "OUT/m.json", "--summary", "OUT/s.txt", "--config", "{}"]),
    ("triton-model", ["--onnx", "JUNK", "--name", "pfn", "--output-dir", "OUT/pfn"]),
    ("plots", ["--predictions", "JUNK", "--metrics", "JUNK", "--outdir", "OUT/plots"]),
    ("training-plots", ["--best", "JUNK", "--outdir", "OUT/plots"]),
])
def test_every_stage_names_an_unreadable_input_in_one_line(tmp_path, stage, args):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)  # neither ROOT, Parquet, JSON nor ONNX
    out = tmp_path / "out"
    line = error_line(gnnjec(stage, *[a.replace("JUNK", str(junk)).replace("OUT", str(out)) for a in args]), stage)
    assert str(junk) in line, line
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*")), sorted(out.rglob("*"))


@pytest.mark.parametrize("stage, args", [
    ("select-model", ["p=JSON", "--output", "OUT/best.json"]),
    ("export-onnx", ["--selection", "JSON", "--family", "pfn", "--models", "p=x", "--clouds", "x",
                     "--onnx", "OUT/m.onnx", "--check", "OUT/c.json"]),
    ("plots", ["--predictions", "x", "--metrics", "JSON", "--outdir", "OUT/plots"]),
    ("training-plots", ["--best", "JSON", "--outdir", "OUT/plots"]),
])
def test_json_of_another_kind_is_named_not_a_traceback(tmp_path, stage, args):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"something": "else"}))
    out = tmp_path / "out"
    line = error_line(gnnjec(stage, *[a.replace("JSON", str(other)).replace("OUT", str(out)) for a in args]), stage)
    assert f"{other}: not a" in line and "rerun" in line, line


def train_args(train, val, out: Path) -> list:
    hp = {"model": "pfn", "phi_sizes": [8], "head_sizes": [8], "epochs": 1, "batch_size": 128}
    return ["train", "--train", train, "--val", val, "--model", out / "model.pt", "--history", out / "history.json",
            "--hparams", json.dumps(hp), "--inputs", json.dumps(features.DEFAULT_INPUTS), "--threads", "1"]


def test_train_names_an_unreadable_or_stale_clouds_file(synthetic_clouds, not_parquet, tmp_path):
    line = error_line(gnnjec(*train_args(not_parquet, synthetic_clouds["val"], tmp_path)), "train")
    assert str(not_parquet) in line and "not a readable clouds Parquet file" in line, line
    # a clouds file converted before a feature existed (here: without the track details' d0_sig)
    table = pq.read_table(synthetic_clouds["train"])
    charged = table.column("charged").combine_chunks()
    struct = charged.values
    names = [f.name for f in struct.type if f.name != "d0_sig"]
    import pyarrow as pa

    stripped = pa.ListArray.from_arrays(charged.offsets, pa.StructArray.from_arrays(
        [struct.field(n) for n in names], names=names))
    stale = tmp_path / "stale.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("charged"), "charged", stripped), stale)
    line = error_line(gnnjec(*train_args(stale, synthetic_clouds["val"], tmp_path)), "train")
    assert str(stale) in line and "no column 'charged.d0_sig'" in line and "convert stage again" in line, line
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "history.json").exists()


def test_export_on_an_empty_clouds_file_leaves_no_model(trained_model, synthetic_clouds, tmp_path):
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(synthetic_clouds["test"]).slice(0, 0), empty)
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"best": "p", "families": {"pfn": "p"}}))
    onnx, check = tmp_path / "model.onnx", tmp_path / "onnx_check.json"
    line = error_line(gnnjec("export-onnx", "--selection", best, "--family", "pfn", "--models", f"p={trained_model[0]}",
                             "--clouds", empty, "--onnx", onnx, "--check", check), "export-onnx")
    assert line == f"gnnjec export-onnx: error: {empty}: holds no jets; convert more events or files", line
    assert not onnx.exists() and not check.exists() and leftovers(tmp_path) == []


def merged_without(split: str, clouds_file: str, folder: Path) -> dict[str, str]:
    """merge-clouds' splits of a converted file whose jets all fell in the other splits: ``split``'s file written
    empty (no row group), by the package's own writers."""
    import pyarrow.compute as pc

    from gnnjec import clouds

    table = pq.read_table(clouds_file)
    part = folder / "part.parquet"
    writer = clouds.parquet_writer(part, table.schema)
    writer.write_table(table.filter(pc.not_equal(table["split"], clouds.SPLITS.index(split))))
    writer.close()
    outputs = {s: str(folder / f"{s}.parquet") for s in clouds.SPLITS}
    counts = clouds.merge_splits([str(part)], outputs)
    assert counts[split] == 0 and pq.read_metadata(outputs[split]).num_row_groups == 0, counts
    return outputs


def test_an_empty_split_is_named_with_its_fix(synthetic_clouds, exported_model, tmp_path):
    """An empty test split (too few events, or train + val near 1) read by evaluate, an empty validation split read by
    training: one line naming the file, its split and the fixes, not 'not a readable clouds Parquet file'."""
    from gnnjec import evaluate

    splits = merged_without("test", synthetic_clouds["all"], tmp_path)
    out = tmp_path / "out"
    outputs = ["--predictions", out / "p.parquet", "--metrics", out / "m.json", "--summary", out / "s.txt"]
    line = error_line(gnnjec("evaluate", "--onnx", f"pfn={exported_model}", "--clouds", splits["test"], *outputs,
                             "--config", "{}"), "evaluate")
    assert line == (f"gnnjec evaluate: error: {splits['test']}: holds no jets: the test split is empty; convert more "
                    "events or files, or lower split.train + split.val (the test split is the rest) in the config")
    assert not out.exists() or not any(out.iterdir())
    # an evaluation sample's files: one without jets among them is passed over
    info = evaluate.run_inference({"pfn": exported_model}, [splits["test"], synthetic_clouds["test"]],
                                  str(tmp_path / "both.parquet"))
    assert info["pfn"]["jets"] == pq.read_metadata(synthetic_clouds["test"]).num_rows > 0

    (tmp_path / "v").mkdir()
    splits = merged_without("val", synthetic_clouds["all"], tmp_path / "v")
    line = error_line(gnnjec(*train_args(splits["train"], splits["val"], tmp_path / "model")), "train")
    assert line == (f"gnnjec train: error: {splits['val']}: holds no jets: the val split is empty; convert more "
                    "events or files, or raise split.val in the config")


def test_a_failed_stage_keeps_what_was_there_before_it_started(synthetic_clouds, not_parquet, tmp_path):
    """Only what the failed run wrote is removed: an earlier complete output of the same path stays."""
    outs = {s: tmp_path / f"{s}.parquet" for s in ("train", "val", "test")}
    args = [f"--{k}={v}" for k, v in outs.items()]
    assert gnnjec("merge-clouds", synthetic_clouds["all"], *args).returncode == 0
    before = {p: p.read_bytes() for p in outs.values()}
    error_line(gnnjec("merge-clouds", not_parquet, *args), "merge-clouds")
    assert {p: p.read_bytes() for p in outs.values()} == before


# --- operator errors: outputs that cannot be written, an output that is an input, ports ---------------

def test_an_output_that_is_its_own_input_is_refused_and_the_input_kept(synthetic_file, tmp_path):
    import shutil

    source = tmp_path / "a.root"
    shutil.copy(synthetic_file, source)
    before = source.read_bytes()
    for output in (source, tmp_path / "." / "a.root"):
        line = error_line(gnnjec("convert", source, "--output", output), "convert")
        assert f"{output}: given as an input and as an output" in line and "write the output elsewhere" in line
    assert source.read_bytes() == before


def test_an_output_folder_that_cannot_be_written_is_one_error_line(synthetic_file):
    """/sys is read-only to every process (EPERM or EROFS, even for root): the real file system's refusal."""
    line = error_line(gnnjec("convert", synthetic_file, "--output", "/sys/gnnjec-test/clouds.parquet"), "convert")
    assert line.startswith("gnnjec convert: error: /sys/gnnjec-test") and any(
        reason in line for reason in ("not permitted", "read-only file system", "permission denied")), line


def test_a_full_disk_is_one_error_line_with_its_fix(monkeypatch, capsys, tmp_path):
    import errno

    from gnnjec import cli, convert

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "c.parquet"))

    monkeypatch.setattr(convert, "convert_file", full)
    assert cli.main(["convert", str(tmp_path / "in.root"), "--output", str(tmp_path / "c.parquet")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"gnnjec convert: error: {tmp_path / 'c.parquet'}: no space left on the device: free space, or write the "
        "outputs elsewhere")


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_port_that_is_not_one_is_refused_by_name(port, tmp_path):
    proc = gnnjec("serve", "--repository", tmp_path, "--port", port)
    assert proc.returncode == 2 and f"gnnjec serve: error: argument --port: '{port}' is not a port" in proc.stderr


# --- SIGTERM, SIGKILL, fsync -----------------------------------------------------------------------

def test_sigterm_removes_temporaries_and_leaves_no_output(synthetic_file, tmp_path):
    out = tmp_path / "clouds.parquet"
    proc = subprocess.Popen([sys.executable, "-m", "gnnjec", "convert", str(synthetic_file), "--output", str(out),
                             "--step-size", "50"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)  # until the first row group is being written to the temporary
    assert leftovers(tmp_path), "convert finished before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("gnnjec convert: stopped by SIGTERM"), stderr[-2000:]
    assert "Traceback" not in stderr
    assert not out.exists() and leftovers(tmp_path) == []


def test_what_a_killed_writer_left_is_removed_by_the_next(tmp_path):
    target = tmp_path / "out.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = files._temporary(target).with_name(f".out.json.tmp-{files._HOST}-{dead.pid}")
    stale.write_text("half")
    alive = files._temporary(target).with_name(f".out.json.tmp-{files._HOST}-{os.getppid()}")
    alive.write_text("still being written by a live process")
    other_host = files._temporary(target).with_name(".out.json.tmp-elsewhere-1")
    other_host.write_text("a process on another node of a shared filesystem")
    with files.atomic_output(target) as tmp:
        Path(tmp).write_text("{}")
    assert target.read_text() == "{}" and not stale.exists() and alive.exists() and other_host.exists()


def test_outputs_are_flushed_to_disk_before_they_are_renamed(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync",
                        lambda fd: calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append(("replace", str(a))) or real_replace(a, b))
    target = tmp_path / "out.txt"
    with files.atomic_output(target) as tmp:
        Path(tmp).write_text("data")
    tmp_name = str(files._temporary(target))
    assert calls.index(("fsync", tmp_name)) < calls.index(("replace", tmp_name))
    assert calls[-1] == ("fsync", str(tmp_path))  # the folder too, so that the rename survives a crash


# --- checkpoints ---------------------------------------------------------------------------------

class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['GNNJEC_TEST_PWNED']}",))


def test_a_crafted_checkpoint_cannot_run_code(trained_model, tmp_path, monkeypatch):
    pwned = tmp_path / "pwned"
    monkeypatch.setenv("GNNJEC_TEST_PWNED", str(pwned))
    crafted = tmp_path / "model.pt"
    import torch

    checkpoint = torch.load(trained_model[0], weights_only=True)
    torch.save({**checkpoint, "hparams": _RunsCode()}, crafted)
    with pytest.raises(errors.InputError, match="model.pt: not a checkpoint of this workflow"):
        load_model(str(crafted))
    assert not pwned.exists()
    # and through the command line: one line, no code run
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"best": "p", "families": {"pfn": "p"}}))
    line = error_line(gnnjec("export-onnx", "--selection", best, "--family", "pfn", "--models", f"p={crafted}",
                             "--clouds", trained_model[0], "--onnx", tmp_path / "m.onnx",
                             "--check", tmp_path / "c.json", env={**os.environ, "GNNJEC_TEST_PWNED": str(pwned)}),
                      "export-onnx")
    assert line.startswith(f"gnnjec export-onnx: error: {crafted}: not a checkpoint of this workflow (UnpicklingError: "
                           "Trying to load unsupported GLOBAL posix.system"), line
    assert line.endswith("; not loaded; give the model.pt the train stage wrote, or train the point again"), line
    assert "weights_only" not in line  # PyTorch's advice to load it with weights_only=False, which would run it
    assert not pwned.exists() and crafted.exists()  # a user's input stays where it is


def test_a_crafted_training_state_is_never_run_and_kept_aside(synthetic_clouds, tmp_path, monkeypatch):
    """A last.pt that is no checkpoint of this workflow (a pickle whose loading would run a command): never run,
    moved aside beside an earlier rejected one (which stays), named in the log; the training starts afresh and
    writes its own."""
    import pickle

    pwned = tmp_path / "pwned"
    monkeypatch.setenv("GNNJEC_TEST_PWNED", str(pwned))
    out = tmp_path / "point"
    out.mkdir()
    last = out / "last.pt"
    last.write_bytes(pickle.dumps(_RunsCode(), protocol=2))  # the protocol torch.save writes
    crafted = last.read_bytes()
    (out / "last.pt.rejected").write_bytes(b"an earlier one")
    proc = gnnjec(*train_args(synthetic_clouds["train"], synthetic_clouds["val"], out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not pwned.exists()
    warning = next(line for line in proc.stderr.splitlines() if "not a checkpoint of this workflow" in line)
    assert warning.endswith(f"{last}: not a checkpoint of this workflow (UnpicklingError: Trying to load unsupported "
                            f"GLOBAL posix.system whose module posix is blocked.); not loaded, moved aside to "
                            f"{last}.rejected-1; training from the start"), warning
    assert "weights_only" not in warning
    assert (out / "last.pt.rejected-1").read_bytes() == crafted
    assert (out / "last.pt.rejected").read_bytes() == b"an earlier one"
    import torch

    assert "fingerprint" in torch.load(last, weights_only=True)  # the training's own state, written anew


@pytest.mark.parametrize("content", [bytes(range(256)) * 4, b""], ids=["other bytes", "empty"])
def test_a_state_that_is_no_checkpoint_is_moved_aside_or_refused(tmp_path, caplog, content):
    """Resuming (last.pt) starts afresh, continuing a rung (state.pt) stops; either moves the file aside, unless
    another process of the training (DDP) is to."""
    from gnnjec import checkpoint

    state = tmp_path / "last.pt"
    state.write_bytes(content)
    assert checkpoint.load_state(str(state), "fingerprint", finished_ok=False, move_aside=False) is None
    assert state.read_bytes() == content and "left for the main process to move aside" in caplog.text
    assert checkpoint.load_state(str(state), "fingerprint", finished_ok=False) is None
    assert not state.exists() and (tmp_path / "last.pt.rejected").read_bytes() == content
    assert f"{state}: not a checkpoint of this workflow (" in caplog.text
    assert f"moved aside to {state}.rejected; training from the start" in caplog.text

    rung = tmp_path / "state.pt"
    rung.write_bytes(content)
    with pytest.raises(errors.InputError) as refused:
        checkpoint.load_continuation(str(rung), "fingerprint")
    message = str(refused.value)
    assert message.startswith(f"{rung}: not a checkpoint of this workflow (") and "weights_only" not in message
    assert message.endswith(f"; not loaded, moved aside to {rung}.rejected; rerun the previous rung of this point")
    assert (tmp_path / "state.pt.rejected").read_bytes() == content and not rung.exists()


# --- provenance ----------------------------------------------------------------------------------

def test_every_output_of_a_stage_carries_its_provenance(synthetic_file, tmp_path):
    out = tmp_path / "clouds.parquet"
    assert gnnjec("convert", synthetic_file, "--output", out, "--step-size", "2000").returncode == 0
    record = provenance.read(out)
    from gnnjec import __version__

    assert record["stage"] == "convert" and record["gnnjec_version"] == __version__
    assert record["inputs"] == [{"path": str(synthetic_file), "bytes": synthetic_file.stat().st_size,
                                 "sha256": provenance.sha256(synthetic_file)}]
    assert record["parameters"]["step_size"] == "2000"
    assert record["config_sha256"] == provenance.config_sha256(record["parameters"])
    commit = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    assert record["git_commit"] == (commit or None)
    # the same run again: the same record (no time, no host), and a different parameter: another hash
    again = tmp_path / "again.parquet"
    gnnjec("convert", synthetic_file, "--output", again, "--step-size", "2000")
    assert provenance.read(again) == record
    other = tmp_path / "other.parquet"
    gnnjec("convert", synthetic_file, "--output", other, "--step-size", "1000")
    assert provenance.read(other)["config_sha256"] != record["config_sha256"]
