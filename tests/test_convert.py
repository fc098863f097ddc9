"""Convert stage on real CMS files (../shared/data/nanoaod) and on synthetic PFNano."""

import subprocess
import sys

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot

from gnnjec import clouds, convert
from gnnjec.errors import InputError


def constituent_pt_sum(clouds) -> np.ndarray:
    """|sum of the constituents' transverse momenta| per jet, from the stored clouds."""
    px = np.zeros(len(clouds))
    py = np.zeros(len(clouds))
    phi_jet = np.asarray(clouds.phi, np.float64)
    for name in ("charged", "neutral"):
        c = clouds[name]
        phi = ak.Array(phi_jet)[:, None] + c.dphi
        px += np.asarray(ak.sum(c.pt * np.cos(phi), axis=1))
        py += np.asarray(ak.sum(c.pt * np.sin(phi), axis=1))
    return np.hypot(px, py)


def test_pfnano_constituents_sum_to_raw_jet_pt(cms_file, tmp_path):
    path = cms_file("pfnano.root")
    out = tmp_path / "pfnano.parquet"
    convert.convert_file(path, str(out), convert.Selection(min_gen_pt=0, require_gen_match=False), convert.Split())
    clouds = ak.from_parquet(out)
    events = uproot.open(path)["Events"].arrays(["Jet_pt", "Jet_rawFactor", "Jet_nConstituents"])
    raw = np.asarray(ak.flatten(events.Jet_pt * (1 - events.Jet_rawFactor)))
    assert len(clouds) == len(raw) == 64  # every jet of the file
    assert np.allclose(np.asarray(clouds.pt_raw), raw, rtol=1e-6)
    assert np.array_equal(np.asarray(clouds.n_constituents), np.asarray(ak.flatten(events.Jet_nConstituents)))
    ratio = constituent_pt_sum(clouds) / raw
    assert np.all(np.abs(ratio - 1) < 0.005), ratio


def test_pfnano_gen_matching_target_and_flavour(cms_file, tmp_path):
    path = cms_file("pfnano.root")
    out = tmp_path / "matched.parquet"
    convert.convert_file(path, str(out), convert.Selection(min_gen_pt=0), convert.Split())
    clouds = ak.from_parquet(out)
    e = uproot.open(path)["Events"].arrays(["Jet_pt", "Jet_rawFactor", "Jet_genJetIdx", "GenJet_pt",
                                            "Jet_hadronFlavour", "Jet_partonFlavour"])
    # independent computation with plain awkward
    valid = (e.Jet_genJetIdx >= 0) & (e.Jet_genJetIdx < ak.num(e.GenJet_pt))
    gen_pt = ak.flatten(e.GenJet_pt[e.Jet_genJetIdx[valid]])
    raw = ak.flatten((e.Jet_pt * (1 - e.Jet_rawFactor))[valid])
    assert len(clouds) == 52
    assert np.allclose(np.asarray(clouds.pt_gen), np.asarray(gen_pt))
    assert np.allclose(np.asarray(clouds.target), np.log(np.asarray(gen_pt) / np.asarray(raw)), atol=1e-6)
    had = np.asarray(ak.flatten(e.Jet_hadronFlavour[valid]))
    part = np.abs(np.asarray(ak.flatten(e.Jet_partonFlavour[valid])))
    label = np.where(had != 0, had, part)
    expected = np.select([label == 5, label == 4, (label >= 1) & (label <= 3), label == 21], [0, 1, 2, 3], -1)
    assert np.array_equal(np.asarray(clouds.flavour), expected)
    assert set(np.asarray(clouds.flavour)) >= {2, 3}  # QCD: light quarks and gluons present


def test_constituent_features_are_relative_to_the_jet(cms_file, tmp_path):
    out = tmp_path / "f.parquet"
    convert.convert_file(cms_file("pfnano.root"), str(out), convert.Selection(min_gen_pt=0), convert.Split())
    c = ak.from_parquet(out)
    ch = c.charged
    assert ak.all(np.abs(ch.dphi) < 0.6) and ak.all(np.hypot(ch.deta, ch.dphi) < 0.6)  # AK4: near the axis
    # derived features are not stored; they are computed when the clouds are read
    assert not {"rel_pt", "log_pt", "dr"} & set(ch.fields)
    from gnnjec.dataset import CloudData

    data = CloudData(str(out), {"charged": ["rel_pt", "dr", "pt"], "jet": ["pt_raw"]})
    first = data.clouds["charged"].values[: data.clouds["charged"].offsets[1]]
    assert np.allclose(first[:, 0], first[:, 2] / data.jet[0, 0], rtol=1e-6)
    assert np.allclose(first[:, 1], np.hypot(np.asarray(ch.deta[0]), np.asarray(ch.dphi[0])), rtol=1e-6)
    assert len(data.clouds["charged"].values) == ak.sum(ak.num(ch))
    sign = np.sign(np.asarray(c.eta))[:, None]
    assert np.allclose(ak.flatten(ch.deta), ak.flatten((ch.eta - c.eta) * sign), atol=1e-5)
    # one-hot particle ids: exactly one flag per charged and per neutral candidate
    assert ak.all(ch.is_hadron + ch.is_muon + ch.is_electron == 1)
    ne = c.neutral
    assert ak.all(ne.is_photon + ne.is_hadron + ne.is_hf_hadron + ne.is_hf_em == 1)
    # constituents are ordered by decreasing pt
    assert ak.all(ch.pt[:, :-1] >= ch.pt[:, 1:])


def test_pfnano_track_details_and_the_has_track_flag(cms_file, tmp_path):
    path = cms_file("pfnano.root")
    out = tmp_path / "f.parquet"
    convert.convert_file(path, str(out), convert.Selection(min_gen_pt=0), convert.Split())
    ch = ak.from_parquet(out).charged
    # the same candidates straight from the file: in the clouds, no -1 sentinel survives
    has = ak.flatten(ch.has_track).to_numpy()
    assert 0.3 < has.mean() < 0.95                   # MiniAOD keeps track details above ~0.5 GeV only
    pt = ak.flatten(ch.pt).to_numpy()
    assert np.median(pt[~has]) < 0.6 < np.median(pt[has])
    for name in ("d0", "dz", "d0_sig", "dz_sig", "track_chi2"):
        values = ak.flatten(ch[name]).to_numpy()
        assert np.all(values[~has] == 0), name
    assert np.all(ak.flatten(ch.lost_inner_hits).to_numpy() >= -1)
    assert ak.flatten(ch.high_purity).to_numpy()[has].mean() > 0.9
    flags = ch.pv_used_in_fit + ch.pv_compatible + ch.pv_other
    assert ak.all(flags <= 1)
    raw = uproot.open(path)["Events"].arrays(["PFCands_d0", "PFCands_d0Err", "PFCands_charge"])
    d0 = ak.flatten(raw.PFCands_d0).to_numpy()
    charged = ak.flatten(raw.PFCands_charge).to_numpy() != 0
    without = charged & (ak.flatten(raw.PFCands_d0Err).to_numpy() <= 0)
    assert without.any() and np.all(d0[without] == -1)   # the sentinel the flag replaces


def test_pfnano_secondary_vertices_are_a_cloud_of_their_own(cms_file, tmp_path):
    path = cms_file("pfnano.root")
    out = tmp_path / "f.parquet"
    convert.convert_file(path, str(out), convert.Selection(min_gen_pt=0, require_gen_match=False), convert.Split())
    c = ak.from_parquet(out)
    raw = uproot.open(path)["Events"].arrays(["JetSVs_jetIdx", "JetSVs_sVIdx", "JetSVs_pt", "JetSVs_mass", "nJet"])
    in_table = raw.JetSVs_sVIdx >= 0
    assert ak.sum(~in_table) > 0                       # insignificant vertices: no SV entry, dropped
    assert ak.sum(c.n_sv) == ak.sum(in_table)          # every jet kept: every listed vertex arrives
    assert ak.all(ak.num(c.sv) == c.n_sv)
    assert sorted(ak.flatten(c.sv.mass).to_list()) == pytest.approx(
        sorted(ak.flatten(raw.JetSVs_mass[in_table]).to_list()), rel=1e-6)
    assert ak.all(c.sv.pt[:, :-1] >= c.sv.pt[:, 1:])
    assert ak.all(np.hypot(c.sv.deta, c.sv.dphi) < 0.6)


def test_files_without_vertices_or_track_details_convert_with_a_warning(synthetic_file, tmp_path, caplog):
    out = tmp_path / "toy.parquet"
    with caplog.at_level("WARNING"):
        convert.convert_file(str(synthetic_file), str(out), convert.Selection(), convert.Split())
    assert "no secondary vertices" in caplog.text and "no PFCands track details" in caplog.text
    c = ak.from_parquet(out, columns=["n_sv", "charged"])
    assert ak.sum(c.n_sv) == 0 and not ak.any(c.charged.has_track)


@pytest.mark.parametrize("name", ["nano_tt_v12.root", "nanoAOD_2015_CMS_Open_Data_ttbar.root", "nano_dy.root"])
def test_files_without_pf_candidates_are_refused_in_one_line(cms_file, tmp_path, name):
    path = cms_file(name)
    out = tmp_path / "out.parquet"
    proc = subprocess.run([sys.executable, "-m", "gnnjec", "convert", path, "--output", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert path in lines[0] and "PFNano" in lines[0] and "JetPFCands_jetIdx" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_truncated_file_is_refused_without_traceback(cms_file, tmp_path):
    source = cms_file("pfnano.root")
    truncated = tmp_path / "truncated.root"
    with open(source, "rb") as f:
        truncated.write_bytes(f.read()[: 1_500_000])
    out = tmp_path / "out.parquet"
    proc = subprocess.run([sys.executable, "-m", "gnnjec", "convert", str(truncated), "--output", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(truncated) in proc.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["truncated.root"]


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(InputError, match="nope.root: no such file"):
        list(convert.iterate_chunks(str(tmp_path / "nope.root")))


def test_synthetic_closure_and_split(synthetic_clouds, synthetic_file):
    clouds = ak.from_parquet(synthetic_clouds["all"])
    # constituents reproduce the raw pt: the generator builds the jet from them, so only float32
    # rounding separates the two
    ratio = constituent_pt_sum(clouds) / np.asarray(clouds.pt_raw)
    assert np.all(np.abs(ratio - 1) < 1e-4)
    assert np.all(np.asarray(clouds.pt_gen) >= 15) and np.all(np.isfinite(np.asarray(clouds.target)))
    # split: reproducible, whole events on one side, fractions near 70/15/15
    split = np.asarray(clouds.split)
    ids = (np.asarray(clouds.run), np.asarray(clouds.luminosity_block), np.asarray(clouds.event))
    again = convert.Split().assign(*ids)
    assert np.array_equal(split, again)
    per_event = {}
    for ev, s in zip(np.asarray(clouds.event), split):
        per_event.setdefault(ev, set()).add(s)
    assert all(len(s) == 1 for s in per_event.values())
    frac = np.bincount(split, minlength=3) / len(split)
    assert abs(frac[0] - 0.7) < 0.05 and abs(frac[1] - 0.15) < 0.04
    assert not np.array_equal(split, convert.Split(seed=1).assign(*ids))


def test_merge_writes_each_split_once(synthetic_clouds):
    total = pq.ParquetFile(synthetic_clouds["all"]).metadata.num_rows
    rows = 0
    for code, name in enumerate(clouds.SPLITS):
        split = pq.read_table(synthetic_clouds[name], columns=["split"]).column("split").to_numpy()
        assert np.all(split == code) and len(split) > 0
        rows += len(split)
    assert rows == total


def test_chunking_does_not_change_the_result(synthetic_file, synthetic_clouds, tmp_path):
    out = tmp_path / "one_chunk.parquet"
    convert.convert_file(str(synthetic_file), str(out), convert.Selection(), convert.Split(), step_size=100_000)
    assert ak.array_equal(ak.from_parquet(out), ak.from_parquet(synthetic_clouds["all"]))


def test_out_of_range_gen_index_is_unmatched(synthetic_file):
    chunk = next(convert.iterate_chunks(str(synthetic_file), 500))
    idx = chunk.jet.fields["genJetIdx"]
    idx[:5] = 1000  # beyond nGenJet: must count as unmatched, never wrap around
    idx[5:10] = -1
    clouds = ak.from_arrow(convert.clouds_from_chunk(chunk, convert.Selection(min_gen_pt=0, require_gen_match=False),
                                                     convert.Split(), "test"))
    assert np.all(np.isnan(np.asarray(clouds.pt_gen)[:10]))
    matched = convert.clouds_from_chunk(chunk, convert.Selection(min_gen_pt=0), convert.Split(), "test")
    assert matched.num_rows == len(clouds) - np.sum(np.isnan(np.asarray(clouds.pt_gen)))


def test_a_file_with_no_selected_jets_gives_an_empty_table_with_the_schema(synthetic_file, synthetic_clouds, tmp_path):
    out = tmp_path / "empty.parquet"
    info = convert.convert_file(str(synthetic_file), str(out), convert.Selection(min_gen_pt=1e6), convert.Split(), 1000)
    assert info["jets"] == 0 and info["events"] == 4000
    assert pq.ParquetFile(out).schema_arrow == pq.ParquetFile(synthetic_clouds["all"]).schema_arrow
    splits = {name: str(tmp_path / f"{name}.parquet") for name in clouds.SPLITS}
    counts = clouds.merge_splits([str(out), synthetic_clouds["all"]], splits)
    assert sum(counts.values()) == pq.ParquetFile(synthetic_clouds["all"]).metadata.num_rows


def test_run3_layout_converts_like_run2(standard_jec, tmp_path):
    """NanoAOD v12+ names rho Rho_fixedGridRhoFastjetAll and narrows integer types: same clouds."""
    from gnnjec import demo

    from support import toy

    correction = demo.load_correction(standard_jec)
    tables = {}
    for layout in ("run2", "run3"):
        path = tmp_path / f"{layout}.root"
        demo.write_pfnano(path, n_events=600, seed=4, file_index=0, correction=correction, layout=layout,
                          generator=toy)
        tables[layout] = tmp_path / f"{layout}.parquet"
        convert.convert_file(str(path), str(tables[layout]), convert.Selection(require_gen_match=False),
                             convert.Split())
    tree = uproot.open(tmp_path / "run3.root")["Events"]
    assert "Rho_fixedGridRhoFastjetAll" in tree and "fixedGridRhoFastjetAll" not in tree
    assert tree["Jet_genJetIdx"].interpretation.content.to_dtype == np.int16
    assert tree["PV_npvs"].interpretation.to_dtype == np.uint8
    run2, run3 = (ak.from_parquet(tables[k]) for k in ("run2", "run3"))
    assert len(run2) > 500 and ak.array_equal(run2, run3, equal_nan=True)


def _write_events(path, branches: dict) -> None:
    """An Events tree in NanoAOD naming (Jet_pt, nJet) from flat arrays and jagged records."""
    types = {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()}
    with uproot.recreate(path) as f:
        f.mktree("Events", types, field_name=lambda outer, inner: f"{outer}_{inner}", counter_name=lambda c: f"n{c}")
        f["Events"].extend(branches)


def _refusal(path, tmp_path) -> str:
    out = tmp_path / "out.parquet"
    proc = subprocess.run([sys.executable, "-m", "gnnjec", "convert", str(path), "--output", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]
    return lines[0]


def test_file_linking_only_fatjet_constituents_is_refused(tmp_path):
    """Official Run 3 NanoAOD keeps constituents only for AK8 jets: name the missing AK4 link."""
    jagged = ak.Array([[1, 2], [3]])
    path = tmp_path / "ak8_only.root"
    _write_events(path, {"Jet": ak.zip({"pt": jagged * 10.0}), "PFCands": ak.zip({"pt": jagged * 1.0}),
                         "FatJetPFCands": ak.zip({"jetIdx": jagged * 0, "pFCandsIdx": jagged})})
    line = _refusal(path, tmp_path)
    assert "only AK8 (FatJet) constituents" in line and "JetPFCands_jetIdx" in line and "PFNano" in line


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.root"
    _write_events(path, {"run": np.zeros(0, np.uint32)})
    assert "the Events tree is empty" in _refusal(path, tmp_path)


def test_step_size_accepts_events_or_memory():
    from gnnjec.nanoaod import step_size

    assert step_size(500) == 500 and step_size("500") == 500 and step_size("100 MB") == "100 MB"
    with pytest.raises(InputError, match="convert.step_size"):
        step_size("100 furlongs")


def test_chunks_sized_in_memory_follow_the_budget(synthetic_file):
    small = [c.n_events for c in convert.iterate_chunks(str(synthetic_file), "1 MB")]
    large = [c.n_events for c in convert.iterate_chunks(str(synthetic_file), "100 MB")]
    assert sum(small) == sum(large) == 4000
    assert len(large) == 1 and len(small) > 4  # the 4000-event file is several MB uncompressed


@pytest.mark.parametrize("group, drop", [("track details", "PFCands_trkQuality"),
                                         ("secondary vertices", "JetSVs_sVIdx")])
def test_half_a_group_of_optional_branches_is_refused_in_one_line(cms_file, group, drop):
    from gnnjec.nanoaod import branch_map

    class Keys:
        def __init__(self, keys):
            self._keys = keys

        def keys(self):
            return self._keys

    keys = [k for k in uproot.open(cms_file("pfnano.root"))["Events"].keys() if k != drop]
    with pytest.raises(InputError) as err:
        branch_map(Keys(keys), "x.root")
    message = str(err.value)
    assert "\n" not in message and drop in message and group in message and message.startswith("x.root:")
