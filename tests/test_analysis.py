"""The correction applied in an analysis: coffea NanoEvents of the real pfnano.root, and clouds."""

import subprocess
import sys

import awkward as ak
import numpy as np
import pytest

from gnnjec import convert
from gnnjec.analysis import EVERY_JET, JetCorrection
from gnnjec.inference import OnnxRegressor


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
