"""``gnnjec synthetic-jec`` and ``gnnjec synthetic-pfnano``: the demo data's stages (Pythia 8 and the CMS-like
detector; ``pip install -e ".[demo]"``)."""

from __future__ import annotations

from ..command import Command


def _jec_arguments(p) -> None:
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--processes", type=int, default=1, help="simulate the calibration sample in this many processes")
    p.add_argument("--output", required=True)


def _jec(a) -> None:
    from . import derive_standard_correction, save_correction

    save_correction(derive_standard_correction(seed=a.seed, n_events=a.events, processes=a.processes), a.output)


def _pfnano_arguments(p) -> None:
    from .events import DEFAULT_PROCESS, PROCESSES

    p.add_argument("--events", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--file-index", type=int, required=True)
    p.add_argument("--jec", required=True, help="standard correction JSON from synthetic-jec")
    p.add_argument("--layout", choices=("run2", "run3"), default="run2", help="NanoAOD generation's names and types")
    p.add_argument("--process", choices=tuple(PROCESSES), default=DEFAULT_PROCESS,
                   help="the hard process (the standard correction is always derived on qcd)")
    p.add_argument("--output", required=True)


def _pfnano(a) -> None:
    from . import load_correction, write_pfnano

    write_pfnano(a.output, n_events=a.events, seed=a.seed, file_index=a.file_index, correction=load_correction(a.jec),
                 layout=a.layout, process=a.process)


COMMANDS = {"synthetic-jec": Command(_jec_arguments, _jec, outputs=("output",)),
            "synthetic-pfnano": Command(_pfnano_arguments, _pfnano, reads=("jec",), outputs=("output",))}
