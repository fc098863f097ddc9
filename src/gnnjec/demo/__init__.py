"""Demo data: simulated events in the NanoAOD/PFNano layout, and their standard correction.

Pythia 8 events (QCD, or tt-bar for evaluation) with a minimum-bias pileup overlay (:mod:`.events`), a
parametric CMS-like detector with particle-flow reconstruction, CHS and PUPPI (:mod:`.detector`, :mod:`.vertices`),
anti-kt jets, flavour labels and matching (:mod:`.jets`), tied together in :mod:`.simulate`; the
flavour-blind standard correction (:mod:`.correction`) and the writer (:mod:`.pfnano`).

An optional part of the package (``pip install -e ".[demo]"``: pythia8mc, fastjet, scipy), imported
only where the demo runs. A generator is anything with ``chunks(n_events, seed, file_index,
correction, **options)`` (options: ``chunk_events``, ``process``), NanoAOD branch dictionaries as
:func:`.pfnano.branches` makes them, and
``derive_standard_correction(seed, n_events, processes)``: the demo's is :mod:`.simulate` (the
tests pass their fast toy, ``tests/support/toy.py``).
"""

from __future__ import annotations

import os

from . import correction as _correction
from . import pfnano


def _pythia():
    from . import simulate

    return simulate


def derive_standard_correction(
    seed: int, n_events: int, processes: int = 1, generator=None
) -> _correction.StandardCorrection:
    """The standard correction, derived on ``n_events`` events of the generator's own (Pythia's unless
    ``generator`` is given) in ``processes`` processes; the result does not depend on their number."""
    return (generator or _pythia()).derive_standard_correction(seed, n_events, processes)


def write_pfnano(
    path: str | os.PathLike,
    n_events: int,
    seed: int,
    file_index: int,
    correction: _correction.StandardCorrection,
    layout: str = "run2",
    chunk_events: int | None = None,
    generator=None,
    process: str | None = None,
) -> None:
    """Write one file of ``n_events`` events (seeded by ``seed`` and ``file_index``), atomically,
    simulated ``chunk_events`` at a time (the generator's default when None) by the generator
    (Pythia's unless ``generator`` is given), of hard process ``process`` (the generator's default, QCD,
    when None; Pythia's: :data:`.events.PROCESSES`)."""
    options = {} if chunk_events is None else {"chunk_events": chunk_events}
    if process is not None:
        options["process"] = process
    chunks = (generator or _pythia()).chunks(n_events, seed, file_index, correction, **options)
    pfnano.write(path, chunks, layout)


save_correction = _correction.save
load_correction = _correction.load
