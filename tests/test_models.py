"""PFN, ParticleNet and the jet-level DNN: gradients, exact padding invariance, and ONNX export with dynamic axes."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from gnnjec.export import export_onnx
from gnnjec.models import build_model

INPUTS = {"charged": ["a", "b", "c"], "neutral": ["a", "b"], "jet": ["x", "y", "z", "w"]}
SMALL = {
    "pfn": {"model": "pfn", "phi_sizes": [16, 32], "head_sizes": [32, 16], "dropout": 0.0},
    "particlenet": {"model": "particlenet", "edge_channels": [[8, 8], [16]], "head_sizes": [16], "k": 4,
                    "coordinates": ["a", "b"], "dropout": 0.0},
    "dnn": {"model": "dnn", "head_sizes": [32, 16], "dropout": 0.0},
}


def random_jets(n_jets, rng, max_len=(9, 6), pad_to=None):
    """Padded random jets with random lengths (some empty) and garbage in the padding."""
    arrays = [rng.normal(size=(n_jets, 4)).astype(np.float32)]
    for n_feat, longest in ((3, max_len[0]), (2, max_len[1])):
        lengths = rng.integers(0, longest + 1, n_jets)
        width = pad_to or longest
        mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.float32)
        x = rng.normal(size=(n_jets, width, n_feat)).astype(np.float32)
        x[mask == 0] = 1e6  # padding content must never matter
        arrays += [x, mask]
    return arrays


def repad(arrays, width):
    """The same jets padded to ``width`` points."""
    out = [arrays[0]]
    for x, mask in zip(arrays[1::2], arrays[2::2]):
        n = x.shape[1]
        x2 = np.full((x.shape[0], width, x.shape[2]), -3e5, np.float32)
        m2 = np.zeros((x.shape[0], width), np.float32)
        x2[:, :n], m2[:, :n] = x, mask
        out += [x2, m2]
    return out


@pytest.fixture(params=sorted(SMALL))
def hp(request):
    return SMALL[request.param]


@pytest.fixture
def model(hp):
    torch.manual_seed(0)
    m = build_model(hp, INPUTS)
    # give BatchNorm non-trivial running statistics
    m.train()
    rng = np.random.default_rng(1)
    for _ in range(3):
        m(*[torch.from_numpy(a) for a in random_jets(64, rng)])
    return m.eval()


def test_forward_backward(hp):
    m = build_model(hp, INPUTS).train()
    arrays = [torch.from_numpy(a) for a in random_jets(32, np.random.default_rng(0))]
    out = m(*arrays)
    assert out.shape == (32,)
    torch.nn.functional.l1_loss(out, torch.zeros(32)).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_prediction_independent_of_padding_and_batch_mates(model):
    rng = np.random.default_rng(2)
    arrays = random_jets(20, rng)
    with torch.no_grad():
        ref = model(*[torch.from_numpy(a) for a in arrays]).numpy()
        longer = model(*[torch.from_numpy(a) for a in repad(arrays, 40)]).numpy()
        alone = np.array([model(*[torch.from_numpy(a[i : i + 1]) for a in arrays]).item() for i in range(20)])
        others = random_jets(30, rng)
        mixed_in = [np.concatenate([a[:5], o]) for a, o in zip(arrays, others)]
        mixed = model(*[torch.from_numpy(a) for a in mixed_in]).numpy()[:5]
    np.testing.assert_allclose(longer, ref, atol=1e-6)
    np.testing.assert_allclose(alone, ref, atol=1e-5)
    np.testing.assert_allclose(mixed, ref[:5], atol=1e-5)


def test_gather_sum_equals_the_scatter_add_of_the_same_points():
    """The PFN's ONNX graph sums each jet's points by gathering them into the padded layout (fast in
    ONNX Runtime); it must equal torch's scatter-add of the same packed points."""
    from gnnjec.models.layers import gather_sum, pack, sum_pool

    arrays = random_jets(25, np.random.default_rng(5))
    points, mask = torch.from_numpy(arrays[1]), torch.from_numpy(arrays[2])
    mask[3] = 0  # a jet without points sums to zero
    real, jet_index = pack(points, mask)
    values = torch.randn(len(real), 7)
    gathered = gather_sum(values, mask)
    torch.testing.assert_close(gathered, sum_pool(values, jet_index, len(points)), rtol=1e-5, atol=1e-5)
    assert torch.all(gathered[3] == 0)


def test_folding_batchnorm_into_linear_keeps_the_function(model):
    import copy

    from gnnjec.export import fold_batchnorm

    for bn in (x for x in model.modules() if isinstance(x, torch.nn.BatchNorm1d)):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    folded = fold_batchnorm(copy.deepcopy(model).eval())
    assert not any(type(x) is torch.nn.BatchNorm1d for s in folded.modules() if isinstance(s, torch.nn.Sequential)
                   for x in s)
    arrays = [torch.from_numpy(a) for a in random_jets(30, np.random.default_rng(6))]
    with torch.no_grad():
        torch.testing.assert_close(folded(*arrays), model.eval()(*arrays), rtol=1e-5, atol=1e-5)


def test_training_mode_ignores_padding(hp):
    torch.manual_seed(0)
    m = build_model(hp, INPUTS).train()
    arrays = random_jets(16, np.random.default_rng(3))
    a = m(*[torch.from_numpy(x) for x in arrays])
    b = m(*[torch.from_numpy(x) for x in repad(arrays, 30)])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_onnx_export_matches_torch_for_any_batch_and_length(model, hp, tmp_path):
    checkpoint = tmp_path / "model.pt"
    torch.save({"hparams": {**hp, "max_constituents": 64}, "inputs": INPUTS, "state_dict": model.state_dict()},
               checkpoint)
    onnx_path = tmp_path / "model.onnx"
    export_onnx(str(checkpoint), str(onnx_path))
    session = ort.InferenceSession(str(onnx_path))
    names = [i.name for i in session.get_inputs()]
    assert names == ["jet", "charged", "charged_mask", "neutral", "neutral_mask"]
    rng = np.random.default_rng(4)
    for batch, longest in ((1, (3, 2)), (5, (30, 1)), (33, (12, 17)), (256, (70, 40))):
        arrays = random_jets(batch, rng, max_len=longest)
        got = session.run(["prediction"], dict(zip(names, arrays)))[0]
        with torch.no_grad():
            want = model(*[torch.from_numpy(a) for a in arrays]).numpy()
        assert got.shape == (batch,)
        np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("preset, thesis", [("pfn", 1.47e6), ("pfn-lite", 41e3), ("particlenet", 1.20e6),
                                            ("particlenet-lite", 38e3), ("dnn", 124e3)])  # dnn: ours, not the thesis's
def test_thesis_presets_train_and_export(preset, thesis, tmp_path):
    """Each preset at full size: one training step, its size near the thesis's, and ONNX = torch."""
    from gnnjec.features import DEFAULT_INPUTS

    torch.manual_seed(0)
    m = build_model({"model": preset}, DEFAULT_INPUTS).train()
    n_params = sum(p.numel() for p in m.parameters())
    # charged, neutral and secondary-vertex networks, as the thesis's
    assert 0.8 * thesis < n_params < 1.1 * thesis
    rng = np.random.default_rng(5)

    def jets(n):
        arrays = [rng.normal(size=(n, len(DEFAULT_INPUTS["jet"]))).astype(np.float32)]
        for name in m.collections:
            lengths = rng.integers(0, 40, n)
            mask = (np.arange(40)[None, :] < lengths[:, None]).astype(np.float32)
            arrays += [rng.normal(size=(n, 40, len(DEFAULT_INPUTS[name]))).astype(np.float32) * mask[..., None], mask]
        return arrays

    optimizer = torch.optim.Adam(m.parameters(), 1e-3)
    loss = m(*[torch.from_numpy(a) for a in jets(64)]).abs().mean()
    loss.backward()
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in m.parameters())
    m.eval()
    torch.save({"hparams": {"model": preset, "max_constituents": 64}, "inputs": DEFAULT_INPUTS,
                "state_dict": m.state_dict()}, tmp_path / "model.pt")
    export_onnx(str(tmp_path / "model.pt"), str(tmp_path / "model.onnx"))
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    arrays = jets(37)
    with torch.no_grad():
        want = m(*[torch.from_numpy(a) for a in arrays]).numpy()
    got = session.run(["prediction"], dict(zip([i.name for i in session.get_inputs()], arrays)))[0]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_particlenet_needs_its_coordinates():
    with pytest.raises(ValueError, match=r"coordinates \[.deta.\] among the charged features"):
        build_model({"model": "particlenet-lite", "coordinates": ["deta"]}, INPUTS)


def test_knn_never_picks_self_or_padding():
    from gnnjec.models.particlenet import knn

    coords = torch.tensor([[[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [0.05, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])  # the last point, on top of the first, is padding
    index, valid = knn(coords, mask, 2)
    index, valid = index[0], valid[0]
    assert index[0].tolist() == [3, 1] and index[1].tolist() == [3, 0] and index[2].tolist()[0] == 1
    assert not (index[:4] == 4).any() and all(i not in row for i, row in enumerate(index.tolist()))
    assert valid[:4].tolist() == [[1.0, 1.0]] * 4 and valid[4].tolist() == [0.0, 0.0]
    # fewer real points than k: the one real neighbour is valid, the rest are not
    index, valid = knn(torch.tensor([[[0.0, 0.0], [1.0, 0.0], [9.0, 9.0]]]), torch.tensor([[1.0, 1.0, 0.0]]), 3)
    assert valid[0].sum(-1).tolist() == [1.0, 1.0, 0.0]
    assert index[0, 0, 0].item() == 1 and index[0, 1, 0].item() == 0


def test_dnn_summaries_are_counts_pt_fractions_and_pt_weighted_means():
    """A hand-made jet: 2 photons (rel_pt 0.2, 0.1) and a neutral hadron (0.3), weighted by exp(log_rel_pt);
    two charged particles weighted by rel_pt; one vertex, unweighted."""
    inputs = {"charged": ["rel_pt", "charge"], "neutral": ["log_rel_pt", "is_photon", "is_hadron", "deta"],
              "sv": ["mass"], "jet": ["x"]}
    model = build_model({"model": "dnn", "head_sizes": [8]}, inputs).eval()
    pad = 1e6  # padding must not count
    neutral = torch.tensor([[[np.log(0.2), 1, 0, 0.1], [np.log(0.1), 1, 0, -0.2], [np.log(0.3), 0, 1, 0.3],
                             [pad, pad, pad, pad]]])
    charged = torch.tensor([[[0.3, 1.0], [0.1, -1.0], [pad, pad]]])
    sv = torch.tensor([[[1.5], [pad]]])
    summary = {name: model.summarize(name, points, (points[..., 0] != pad).float())[0].tolist()
               for name, points in (("charged", charged), ("neutral", neutral), ("sv", sv))}
    mean_log_rel_pt = (0.2 * np.log(0.2) + 0.1 * np.log(0.1) + 0.3 * np.log(0.3)) / 0.6
    # [count, sum of weights (the pt fraction), weighted mean of each input]
    np.testing.assert_allclose(summary["neutral"], [3, 0.6, mean_log_rel_pt, 0.3 / 0.6, 0.3 / 0.6,
                                                    (0.02 - 0.02 + 0.09) / 0.6], rtol=1e-6)
    np.testing.assert_allclose(summary["charged"], [2, 0.4, (0.09 + 0.01) / 0.4, (0.3 - 0.1) / 0.4], rtol=1e-6)
    np.testing.assert_allclose(summary["sv"], [1, 1, 1.5], rtol=1e-6)
    empty = model.summarize("sv", sv, torch.zeros(1, 2))
    assert empty.tolist() == [[0.0, 0.0, 0.0]]


def test_dnn_sees_only_the_summaries_not_the_points():
    """Permuting each jet's points leaves the DNN's prediction as it was; so does spreading two photons apart
    in eta about their pt centroid (the same summaries, which a graph network would tell apart); a change of
    the photons' energy fraction does not."""
    torch.manual_seed(0)
    model = build_model(SMALL["dnn"], INPUTS).train()
    rng = np.random.default_rng(7)
    model(*[torch.from_numpy(a) for a in random_jets(64, rng)])  # BatchNorm statistics
    model.eval()
    arrays = random_jets(20, rng)
    shuffled = list(arrays)
    for i in (1, 3):
        x, mask = arrays[i].copy(), arrays[i + 1]
        for jet in range(len(x)):
            n = int(mask[jet].sum())
            x[jet, :n] = x[jet, rng.permutation(n)]
        shuffled[i] = x
    with torch.no_grad():
        ref = model(*[torch.from_numpy(a) for a in arrays]).numpy()
        permuted = model(*[torch.from_numpy(a) for a in shuffled]).numpy()
    np.testing.assert_allclose(permuted, ref, atol=1e-5)

    inputs = {"neutral": ["log_rel_pt", "deta", "is_photon", "is_hadron"], "jet": ["x"]}
    m = build_model({"model": "dnn", "head_sizes": [16, 8]}, inputs).eval()
    jet, mask = torch.zeros(1, 1), torch.ones(1, 3)

    def predict(points):  # (rel_pt, deta, is_photon) per particle
        x = torch.tensor([[[np.log(r), d, p, 1 - p] for r, d, p in points]], dtype=torch.float32)
        with torch.no_grad():
            return m(jet, x, mask).item()

    together = predict([(0.15, 0.0, 1), (0.15, 0.0, 1), (0.3, 0.1, 0)])
    apart = predict([(0.15, -0.1, 1), (0.15, 0.1, 1), (0.3, 0.1, 0)])
    assert apart == pytest.approx(together, abs=1e-6)
    assert predict([(0.15, 0.0, 1), (0.15, 0.0, 0), (0.3, 0.1, 0)]) != pytest.approx(together, abs=1e-4)


def test_dnn_standardises_its_summaries_with_the_training_statistics():
    """fit_standardization gives the DNN's collection layers the statistics of the jets' summaries (not of
    the points): the standardised summaries of the training jets are centred, of unit width."""
    from types import SimpleNamespace

    from gnnjec.dataset import Ragged
    from gnnjec.training import fit_standardization

    rng = np.random.default_rng(8)
    n = 5000
    jet = rng.normal(size=(n, 4)).astype(np.float32)
    clouds = {}
    for name, n_feat in (("charged", 3), ("neutral", 2)):
        counts = rng.integers(0, 20, n)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        clouds[name] = Ragged(rng.normal(3.0, 2.0, size=(offsets[-1], n_feat)).astype(np.float32), offsets)
    data = SimpleNamespace(n=n, jet=jet, clouds=clouds, collections=list(clouds))
    model = build_model(SMALL["dnn"], INPUTS).eval()
    fit_standardization(model, data)
    for name in clouds:
        x, mask = clouds[name].pad(np.arange(n), 64)
        with torch.no_grad():
            z = model.encode(name, torch.from_numpy(x), torch.from_numpy(mask)).numpy()
        assert z.shape == (n, 2 + len(INPUTS[name]))
        np.testing.assert_allclose(np.median(z, axis=0), 0, atol=0.05)
        np.testing.assert_allclose(np.percentile(z, 84, axis=0) - np.percentile(z, 16, axis=0), 2, atol=0.25)
