"""Demo data: simulated events in the NanoAOD/PFNano layout, and their standard correction.

Two generators write the same layout:

* ``pythia`` (the demo's): Pythia 8 QCD events with a minimum-bias pileup overlay
  (:mod:`.events`), a parametric CMS-like detector with particle-flow reconstruction, CHS and PUPPI
  (:mod:`.detector`), anti-kt jets, flavour labels and matching (:mod:`.jets`), tied together in
  :mod:`.simulate`;
* ``toy`` (:mod:`.toy`): parametric jets without clustering, thousands of events a second, for
  fast tests. Its detector hands a network shortcuts a real one does not (a pileup-truth PUPPI
  weight, identical gen and reco content), so no physics result should come from it.

Both share the flavour-blind standard correction (:mod:`.correction`) and the writer
(:mod:`.pfnano`).
"""

from __future__ import annotations

import os

from . import correction as _correction
from . import pfnano

GENERATORS = ("pythia", "toy")


def _module(generator: str):
    if generator == "pythia":
        from . import simulate

        return simulate
    if generator == "toy":
        from . import toy

        return toy
    raise ValueError(f"generator {generator!r}: use one of {GENERATORS}")


def derive_standard_correction(
    generator: str, seed: int, n_events: int, processes: int = 1
) -> _correction.StandardCorrection:
    """The generator's standard correction, derived on ``n_events`` events of its own (Pythia's
    in ``processes`` processes; the result does not depend on their number)."""
    if generator == "pythia":
        return _module(generator).derive_standard_correction(seed, n_events, processes)
    return _module(generator).derive_standard_correction(seed, n_events)


def write_pfnano(
    path: str | os.PathLike,
    generator: str,
    n_events: int,
    seed: int,
    file_index: int,
    correction: _correction.StandardCorrection,
    layout: str = "run2",
    chunk_events: int | None = None,
) -> None:
    """Write one file of ``n_events`` events (seeded by ``seed`` and ``file_index``), atomically,
    simulated ``chunk_events`` at a time (the generator's default when None)."""
    options = {} if chunk_events is None else {"chunk_events": chunk_events}
    chunks = _module(generator).chunks(n_events, seed, file_index, correction, **options)
    pfnano.write(path, chunks, layout)


save_correction = _correction.save
load_correction = _correction.load
