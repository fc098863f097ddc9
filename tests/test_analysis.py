"""The correction applied in an analysis: coffea NanoEvents of the real pfnano.root, and clouds."""

import pickle
import re
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from gnnjec import convert
from gnnjec.analysis import EVERY_JET, JetCorrection
from gnnjec.errors import InputError
from gnnjec.inference import OnnxRegressor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def events(cms_file):
    from coffea.nanoevents import NanoEventsFactory, PFNanoAODSchema

    path = cms_file("pfnano.root")
    return path, NanoEventsFactory.from_root({path: "Events"}, schemaclass=PFNanoAODSchema, mode="eager").events()


def test_nanoevents_jets_get_the_corrections_the_workflow_computes(events, exported_model, tmp_path):
    """Every jet of pfnano.root read with coffea gets the corrected pt that the workflow's own path
    (convert stage -> clouds -> ONNX Runtime) gives the same jet."""
    path, ev = events
    correction = JetCorrection(exported_model, threads=1)
    pt = correction.corrected_pt(ev)
    assert ak.all(ak.num(pt, axis=1) == ak.num(ev.Jet.pt, axis=1))
    clouds = tmp_path / "clouds.parquet"
    convert.convert_file(path, str(clouds), EVERY_JET, convert.Split())
    stored = ak.from_parquet(clouds, columns=["pt_raw", "run", "event", "pt_std"])
    assert len(stored) == int(ak.sum(ak.num(ev.Jet.pt)))
    np.testing.assert_array_equal(np.asarray(stored.pt_std), np.asarray(ak.flatten(ev.Jet.pt)).astype(np.float32))
    regressor = OnnxRegressor(exported_model)
    from gnnjec.dataset import CloudData

    data = CloudData(str(clouds), regressor.inputs, truth=("pt_raw",))
    expected = data.truth["pt_raw"] * np.exp(regressor.predict(data))
    np.testing.assert_allclose(np.asarray(ak.flatten(pt)), expected, rtol=2e-6)
    np.testing.assert_allclose(correction.corrected_pt_of_clouds(str(clouds)), expected, rtol=2e-6)
    # a correction, not a copy: within a factor of two of the raw pt, and not the standard one
    raw = np.asarray(stored.pt_raw)
    assert np.all((expected > 0.5 * raw) & (expected < 2 * raw))
    assert not np.allclose(expected, np.asarray(stored.pt_std))


def test_data_without_generator_truth_is_corrected_too(events, exported_model):
    """Collision data has no GenJet and no flavour branches: every jet still gets its correction."""
    _, ev = events
    with_truth = JetCorrection(exported_model, threads=1).corrected_pt(ev[:50])
    data = ev[:50]
    jet = data.Jet
    for name in ("genJetIdx", "hadronFlavour", "partonFlavour"):
        jet = ak.without_field(jet, name)
    data = ak.with_field(ak.without_field(data, "GenJet"), jet, "Jet")
    without = JetCorrection(exported_model, threads=1).corrected_pt(data)
    np.testing.assert_allclose(np.asarray(ak.flatten(without)), np.asarray(ak.flatten(with_truth)), rtol=1e-6)


def test_analysis_does_not_import_torch():
    code = "import sys, gnnjec.analysis; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"



def _by_jet(event, pt_orig, pt) -> dict:
    """(event number, pt as read) -> corrected pt: a jet's identity whatever the selection or order."""
    return {(int(e), float(p)): float(c) for e, p, c in zip(event, pt_orig, pt)}


def _flat_by_jet(events_event, jets) -> dict:
    event = ak.broadcast_arrays(events_event, jets.pt)[0]
    return _by_jet(ak.flatten(event), ak.flatten(jets.pt_orig), ak.flatten(jets.pt))


def test_jet_collection_interface_corrects_pt_and_mass_and_keeps_every_field(events, exported_model):
    """A selected, reordered events.Jet comes back with the network's pt and mass; each jet's correction is the
    one it gets in the whole collection, and every field of the input survives."""
    _, ev = events
    correction = JetCorrection(exported_model, threads=1)
    everything = correction.corrected_jets(ev.Jet)
    np.testing.assert_array_equal(ak.flatten(everything.pt), ak.flatten(correction.corrected_pt(ev)))
    selected = ev.Jet[ev.Jet.pt > 30]
    selected = selected[ak.argsort(selected.eta, axis=1)]
    jets = correction.corrected_jets(selected)
    assert ak.all(ak.num(jets) == ak.num(selected)) and int(ak.sum(ak.num(jets))) > 20
    full, got = _flat_by_jet(ev.event, everything), _flat_by_jet(ev.event, jets)
    assert len(full) == int(ak.sum(ak.num(ev.Jet)))  # (event, pt) names each jet once
    assert got == {key: full[key] for key in got}
    assert set(ev.Jet.fields) <= set(jets.fields)
    np.testing.assert_array_equal(ak.flatten(jets.btagDeepFlavB), ak.flatten(selected.btagDeepFlavB))
    np.testing.assert_array_equal(ak.flatten(jets.pt_orig), ak.flatten(selected.pt))
    np.testing.assert_array_equal(ak.flatten(jets.eta), ak.flatten(selected.eta))
    raw = 1 - ak.flatten(selected.rawFactor)
    np.testing.assert_allclose(ak.flatten(jets.pt_raw), ak.flatten(selected.pt) * raw, rtol=1e-6)
    factor = ak.flatten(jets.jet_energy_correction)
    np.testing.assert_allclose(ak.flatten(jets.pt), ak.flatten(jets.pt_raw) * factor, rtol=1e-5)
    np.testing.assert_allclose(ak.flatten(jets.mass), ak.flatten(selected.mass) * raw * factor, rtol=1e-5)
    assert not np.allclose(ak.flatten(jets.pt), ak.flatten(selected.pt))  # corrected, not copied
    # still coffea jets: their vector methods see the corrected four-vector
    np.testing.assert_allclose(ak.flatten(jets.energy), ak.flatten(np.hypot(jets.pt * np.cosh(jets.eta), jets.mass)),
                               rtol=1e-5)


def test_jets_that_cannot_be_corrected_get_one_clear_error(events, exported_model):
    _, ev = events
    correction = JetCorrection(exported_model, threads=1)
    shifted = ak.with_field(ev.Jet, ev.Jet.pt * 1.01, "pt")
    with pytest.raises(InputError, match=r"jets: \d+ of \d+ jets are not jets of their events.*selected or reordered"):
        correction.corrected_jets(shifted, ev)
    busy = ev[ak.num(ev.Jet) > 6]
    with pytest.raises(InputError, match="the events were selected: pass events="):
        correction.corrected_jets(busy.Jet)
    assert ak.all(correction.corrected_jets(busy.Jet, busy).pt == correction.corrected_pt(ev)[ak.num(ev.Jet) > 6])
    with pytest.raises(InputError, match="not jets of coffea NanoEvents .* pass events="):
        correction.corrected_jets(ak.Array(ev.Jet.pt))
    with pytest.raises(InputError, match="no rawFactor field"):
        correction.corrected_jets(ak.without_field(ev.Jet, "rawFactor"), ev)
    no_links = ak.without_field(ev, "JetPFCands")
    with pytest.raises(InputError, match="missing JetPFCands_jetIdx.*PFNanoAODSchema"):
        correction.corrected_jets(no_links.Jet, no_links)


def test_correction_pickles_without_its_session(exported_model):
    correction = JetCorrection(exported_model, threads=1)
    blob = pickle.dumps(correction)
    assert len(blob) < 1000  # the path, not the model or a session
    copy = pickle.loads(blob)
    assert copy._regressor is None and copy.regressor.inputs == correction.regressor.inputs


def test_dask_nanoevents_give_the_eager_corrections_reading_only_what_the_network_needs(events, exported_model):
    import dask_awkward as dak
    import uproot
    from coffea.nanoevents import NanoEventsFactory, PFNanoAODSchema

    path, ev = events
    correction = JetCorrection(exported_model, threads=1)
    lazy = NanoEventsFactory.from_root({path: "Events"}, schemaclass=PFNanoAODSchema, mode="dask").events()
    jets = correction.corrected_jets(lazy.Jet[lazy.Jet.pt > 20])
    (columns,) = dak.report_necessary_columns(jets.pt).values()
    with uproot.open(path) as f:
        branches = set(f["Events"].keys())
    assert columns < branches and len(columns) < len(branches) / 10  # column optimisation, not every branch
    assert {"Jet_rawFactor", "PFCands_pt", "JetPFCands_pFCandsIdx", "JetSVs_jetIdx", "fixedGridRhoFastjetAll",
            "PV_npvs"} <= columns and "Muon_pt" not in columns
    computed = jets.compute()
    eager = _corrected_selection(correction, ev)
    for name in ("pt", "mass", "pt_orig", "jet_energy_correction"):
        assert ak.all(computed[name] == eager[name]), name


def _corrected_selection(correction, ev):
    """The eager path: jets above 20 GeV of pfnano.root, corrected (what support.processors computes)."""
    return correction.corrected_jets(ev.Jet[ev.Jet.pt > 20])


@pytest.mark.parametrize("executor", ["iterative", "futures", "dask"])
def test_processor_runner_gives_the_eager_corrections(events, exported_model, executor):
    """coffea's processor.Runner over the real file in chunks of 3 events, the correction pickled to worker
    processes (futures, a loopback dask cluster): every jet's correction equals the eager one."""
    from coffea import processor
    from coffea.nanoevents import PFNanoAODSchema

    from support.processors import CorrectedJets

    path, ev = events
    correction = JetCorrection(exported_model, threads=1)
    fileset = {"pfnano": {"files": {path: "Events"}}}

    def run(ex):
        runner = processor.Runner(executor=ex, schema=PFNanoAODSchema, chunksize=3)
        return runner(fileset, processor_instance=CorrectedJets(correction), treename="Events")

    if executor == "dask":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            out = run(processor.DaskExecutor(client=client, status=False))
    else:
        out = run(processor.IterativeExecutor(status=False) if executor == "iterative" else
                  processor.FuturesExecutor(workers=2, status=False))
    got = _by_jet(out["event"].value, out["pt_orig"].value, out["pt"].value)
    eager = _flat_by_jet(ev.event, _corrected_selection(correction, ev))
    assert len(out["pt"].value) == len(eager) > 20
    assert got == eager


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


@pytest.mark.parametrize("number", range(3))
def test_the_pages_examples_run_as_written(events, exported_model, tmp_path, number):
    """docs/analysis.md's examples, unchanged, in a folder laid out as after `make demo` next to pfnano.root."""
    blocks = python_blocks(ROOT / "docs" / "analysis.md")
    assert len(blocks) == 3
    path, _ = events
    (tmp_path / "pfnano.root").symlink_to(path)
    (tmp_path / "results" / "export" / "pfn").mkdir(parents=True)
    (tmp_path / "results" / "export" / "pfn" / "model.onnx").symlink_to(exported_model)
    (tmp_path / "example.py").write_text(blocks[number])
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "the example prints what it computed"
