"""``gnnjec <stage>``: the command line the Snakemake rules call (and that users can call directly).

Bad input ends with one line on stderr, ``gnnjec <stage>: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from . import provenance
from .errors import CheckFailed, InputError, Terminated, terminate_on_sigterm
from .files import atomic_output, read_json, written

log = logging.getLogger("gnnjec.cli")


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err})") from None


def _named_paths(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise InputError(f"expected NAME=PATH, got {item!r}")
        out[name] = path
    return out


def _write_json(path: str, data) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(provenance.with_provenance(data), indent=1))


def cmd_synthetic_jec(a):
    from .demo import derive_standard_correction, save_correction

    save_correction(derive_standard_correction(a.generator, a.seed, a.events, a.processes), a.output)


def cmd_synthetic(a):
    from .demo import load_correction, write_pfnano

    write_pfnano(a.output, a.generator, a.events, a.seed, a.file_index, load_correction(a.jec), layout=a.layout)


def cmd_convert(a):
    from .convert import Selection, Split, convert_file
    from .nanoaod import step_size

    info = convert_file(a.input, a.output, Selection.from_config(a.selection), Split.from_config(a.split), step_size(a.step_size))
    log.info("converted %(events)d events, %(jets)d jets in %(seconds).1f s", info)


def cmd_merge(a):
    from .convert import merge_splits

    counts = merge_splits(a.parts, {"train": a.train, "val": a.val, "test": a.test})
    log.info("jets per split: %s", counts)


def cmd_train(a):
    from .features import validate_inputs
    from .training import train

    validate_inputs(a.inputs)
    summary = train(a.train, a.val, a.model, a.history, a.hparams, a.inputs, a.device, a.threads,
                    until_epoch=a.until_epoch, continue_from=a.continue_from, state_path=a.state,
                    gpu_min_capability=a.gpu_min_capability)
    log.info("best validation loss %.5f after %d epochs", summary["best_val_loss"], len(summary["epochs"]))


def cmd_select(a):
    from .search import outcome_table, select_best

    choice = select_best(_named_paths(a.histories))
    if a.table:
        with atomic_output(a.table) as tmp:
            Path(tmp).write_text(outcome_table(choice))
    _write_json(a.output, choice)
    log.info("best point: %s (of %d; %d epochs trained in all)", choice["best"], len(choice["ranking"]),
             choice["total_epochs"])


def cmd_promote(a):
    from .search import promotion

    decision = promotion(_named_paths(a.histories), a.keep, a.rung)
    _write_json(a.output, decision)
    log.info("rung %d: %d of %d points go on: %s", a.rung, len(decision["promoted"]), len(decision["ranking"]),
             ", ".join(decision["promoted"]))


def cmd_export(a):
    from .export import check_onnx, export_onnx

    choice = read_json(a.selection, "model selection (JSON)", "rerun the select rule", keys=("best", "families"))
    if a.family not in choice.get("families", {}):
        raise InputError(f"{a.selection}: no trained point of model family {a.family!r} (families: "
                         f"{sorted(choice.get('families', {}))}); add one to training.grid or rerun the select rule")
    point = choice["families"][a.family]
    models = _named_paths(a.models)
    if point not in models:
        raise InputError(f"{a.selection}: best {a.family} point {point!r} is not among the trained models; rerun the select rule")
    with atomic_output(a.check) as check_tmp:
        export_onnx(models[point], a.onnx, name=point)
        try:
            result = check_onnx(models[point], a.onnx, a.clouds, a.jets, a.tolerance)
        except CheckFailed:
            Path(a.onnx).unlink(missing_ok=True)  # a model that disagrees with torch must not look exported
            raise
        result.update(model=point, family=a.family, best_overall=point == choice["best"])
        Path(check_tmp).write_text(json.dumps(provenance.with_provenance(result), indent=1))


def cmd_evaluate(a):
    from .evaluate import compute_metrics, run_inference

    info = run_inference(_named_paths(a.onnx), a.clouds, a.predictions, a.threads)
    # the exported point of each model (timings go to the log: the metrics file depends on the inputs only)
    table = compute_metrics(a.predictions, a.metrics, a.config, {k: v["point"] for k, v in info.items()}, a.table)
    with atomic_output(a.summary) as tmp:
        Path(tmp).write_text(f"{table}\n\n{provenance.comment()}\n")
    print(table)


def _triton_arguments(parser) -> None:
    from .triton import MAX_BATCH_SIZE, MAX_QUEUE_DELAY_US

    parser.add_argument("--max-batch-size", type=int, default=MAX_BATCH_SIZE)
    parser.add_argument("--max-queue-delay-us", type=int, default=MAX_QUEUE_DELAY_US,
                        help="dynamic batching's wait for more requests")


def cmd_triton(a):
    from .triton import write_model

    write_model(a.name, a.onnx, a.output_dir, a.max_batch_size, a.max_queue_delay_us)
    log.info("wrote %s/config.pbtxt and %s/1/model.onnx", a.output_dir, a.output_dir)


def cmd_serve(a):
    from .serving import make_server

    server = make_server(a.repository, a.host, a.port, a.threads)
    host, port = server.server_address[:2]
    log.info("serving %s on http://%s:%d (KServe v2 / Open Inference Protocol)",
             ", ".join(sorted(server.RequestHandlerClass.models)), host, port)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, Terminated):  # Ctrl-C, or SIGTERM from a service manager: a normal stop
        log.info("stopping")
    finally:
        server.server_close()


def cmd_dump_config(a):
    import yaml

    with atomic_output(a.output) as tmp:
        Path(tmp).write_text("# The configuration of this run, with the schema's defaults filled in\n"
                             f"{provenance.comment()}\n" + yaml.safe_dump(a.config, sort_keys=False))


def cmd_plots(a):
    from .plotting import make_plots

    for path in make_plots(a.predictions, a.metrics, a.outdir, a.dataset, energy=a.energy, cms_text=a.cms_text):
        log.info("wrote %s", path)


def cmd_training_plots(a):
    from .plotting import make_training_plots

    for path in make_training_plots(a.best, a.outdir, energy=a.energy, cms_text=a.cms_text):
        log.info("wrote %s", path)


def _label_arguments(parser) -> None:
    """The CMS label of the plots (config key ``plots``)."""
    parser.add_argument("--energy", type=float, default=13.6, help="centre-of-mass energy in TeV, for the label")
    parser.add_argument("--cms-text", default="Private Work", help='text after "CMS Simulation"')


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gnnjec", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="stage", required=True)

    generators = ("pythia", "toy")
    s = sub.add_parser("synthetic-jec", help="derive the standard correction of the demo detector")
    s.add_argument("--generator", choices=generators, default="pythia", help="Pythia 8 and a CMS-like detector, or the fast toy")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--events", type=int, default=8_000)
    s.add_argument("--processes", type=int, default=1, help="simulate the calibration sample in this many processes")
    s.add_argument("--output", required=True)
    s.set_defaults(func=cmd_synthetic_jec, reads=(), outputs=('output',))

    s = sub.add_parser("synthetic", help="write one demo PFNano file")
    s.add_argument("--generator", choices=generators, default="pythia", help="must be the one of --jec")
    s.add_argument("--events", type=int, required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--file-index", type=int, required=True)
    s.add_argument("--jec", required=True, help="standard correction JSON from synthetic-jec")
    s.add_argument("--layout", choices=("run2", "run3"), default="run2", help="NanoAOD generation's names and types")
    s.add_argument("--output", required=True)
    s.set_defaults(func=cmd_synthetic, reads=('jec',), outputs=('output',))

    s = sub.add_parser("convert", help="NanoAOD/PFNano file -> particle clouds (Parquet)")
    s.add_argument("input", help="local path or root:// URL")
    s.add_argument("--output", required=True)
    s.add_argument("--selection", type=_json, default={})
    s.add_argument("--split", type=_json, default={})
    s.add_argument("--step-size", default="50 MB", help="events per chunk, or memory per chunk like '100 MB'")
    s.set_defaults(func=cmd_convert, reads=('input',), outputs=('output',))

    s = sub.add_parser("merge", help="per-file clouds -> train/val/test files")
    s.add_argument("parts", nargs="+")
    s.add_argument("--train", required=True)
    s.add_argument("--val", required=True)
    s.add_argument("--test", required=True)
    s.set_defaults(func=cmd_merge, reads=('parts',), outputs=('train', 'val', 'test'))

    s = sub.add_parser("train", help="fit one hyperparameter point")
    s.add_argument("--train", required=True)
    s.add_argument("--val", required=True)
    s.add_argument("--model", required=True, help="output checkpoint (.pt)")
    s.add_argument("--history", required=True, help="output training history (.json)")
    s.add_argument("--hparams", type=_json, required=True)
    s.add_argument("--inputs", type=_json, required=True, help="feature lists per collection")
    s.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (config key training.device)")
    s.add_argument("--gpu-min-capability", type=float, default=None,
                   help="the least CUDA compute capability to train on (config key training.gpu_min_capability)")
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--until-epoch", type=int, default=None,
                   help="a budget: stop after this many epochs (the schedule still planned for all of them)")
    s.add_argument("--continue-from", default=None, help="the state a smaller budget of this training ended with")
    s.add_argument("--state", default=None, help="output: the state this budget ends with (.pt)")
    s.set_defaults(func=cmd_train, reads=('train', 'val', 'continue_from'), outputs=('model', 'history', 'state'))

    s = sub.add_parser("promote", help="successive halving: the best points of a rung go on to the next")
    s.add_argument("histories", nargs="+", metavar="NAME=HISTORY")
    s.add_argument("--keep", type=int, required=True)
    s.add_argument("--rung", type=int, required=True)
    s.add_argument("--output", required=True)
    s.set_defaults(func=cmd_promote, reads=('histories',), outputs=('output',))

    s = sub.add_parser("select", help="choose the point with the lowest validation loss")
    s.add_argument("histories", nargs="+", metavar="NAME=HISTORY")
    s.add_argument("--output", required=True)
    s.add_argument("--table", default=None, help="output: every point's outcome, tab-separated")
    s.set_defaults(func=cmd_select, reads=('histories',), outputs=('output', 'table'))

    s = sub.add_parser("export", help="export a model family's best point to ONNX and check it against torch")
    s.add_argument("--selection", required=True, help="best.json from select")
    s.add_argument("--family", default="pfn", help="the model family (pfn, particlenet, ...) whose best point to export")
    s.add_argument("--models", nargs="+", required=True, metavar="NAME=CHECKPOINT")
    s.add_argument("--clouds", required=True, help="held-out clouds for the check")
    s.add_argument("--onnx", required=True)
    s.add_argument("--check", required=True, help="output JSON with the comparison")
    s.add_argument("--jets", type=int, default=2000)
    s.add_argument("--tolerance", type=float, default=1e-4)
    s.set_defaults(func=cmd_export, reads=('selection', 'models', 'clouds'), outputs=('onnx', 'check'))

    s = sub.add_parser("evaluate", help="ONNX inference on the test split and physics metrics")
    s.add_argument("--onnx", nargs="+", required=True, metavar="NAME=ONNX", help="the models to evaluate, by name")
    s.add_argument("--clouds", required=True)
    s.add_argument("--predictions", required=True)
    s.add_argument("--metrics", required=True)
    s.add_argument("--summary", required=True)
    s.add_argument("--config", type=_json, required=True)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--table", default=None, help="also write the binned metrics as CSV here")
    s.set_defaults(func=cmd_evaluate, reads=('onnx', 'clouds'), outputs=('predictions', 'metrics', 'summary', 'table'))

    s = sub.add_parser("triton", help="one model of a Triton model repository from an exported ONNX file")
    s.add_argument("--onnx", required=True)
    s.add_argument("--name", required=True, help="the model's name in the repository (its folder)")
    s.add_argument("--output-dir", required=True, help="<repository>/<name>")
    _triton_arguments(s)
    s.set_defaults(func=cmd_triton, reads=('onnx',), outputs=('output_dir',))

    s = sub.add_parser("serve", help="serve a Triton model repository over KServe v2 REST with ONNX Runtime")
    s.add_argument("--repository", default="results/triton", help="the Triton model repository folder")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    s.add_argument("--port", type=int, default=8000, help="0: any free port (the log says which)")
    s.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per model")
    s.set_defaults(func=cmd_serve, reads=('repository',), outputs=())

    s = sub.add_parser("dump-config", help="write the run's configuration (for the report, and to rerun it)")
    s.add_argument("--config", type=_json, required=True)
    s.add_argument("--output", required=True)
    s.set_defaults(func=cmd_dump_config, reads=(), outputs=('output',))

    s = sub.add_parser("plots", help="physics plots from the predictions and metrics")
    s.add_argument("--predictions", required=True)
    s.add_argument("--metrics", required=True)
    s.add_argument("--outdir", required=True)
    s.add_argument("--dataset", default="")
    _label_arguments(s)
    s.set_defaults(func=cmd_plots, reads=('predictions', 'metrics'), outputs=('outdir',))

    s = sub.add_parser("training-plots", help="loss curves and the validation loss of every point")
    s.add_argument("--best", required=True, help="best.json from select")
    s.add_argument("--outdir", required=True)
    _label_arguments(s)
    s.set_defaults(func=cmd_training_plots, reads=('best',), outputs=('outdir',))
    return p


def _remove_written(outputs) -> list[Path]:
    """Remove what this run completed among its declared outputs (a file, or a file in an output folder):
    a failed stage leaves nothing that could pass for its result. What was there before it started
    stays, and so does what other jobs wrote beside it (plots and training plots share a folder), and a
    training's last.pt, which is not an output but the state to resume from."""
    roots = [Path(o).absolute() for o in outputs if o]
    removed = []
    for path in written():
        if any(path == root or root in path.parents for root in roots) and path.is_file():
            path.unlink()
            removed.append(path)
    return removed


_NAMED = {"histories", "models", "onnx"}  # NAME=PATH lists


def _paths(args, names) -> list[str]:
    paths = []
    for name in names:
        value = getattr(args, name, None)
        for item in value if isinstance(value, list) else [value] if value else []:
            paths.append(item.partition("=")[2] if name in _NAMED and "=" in item else item)
    return paths


def _begin_provenance(args) -> None:
    """The provenance record of this stage's outputs: its parameters (the arguments that are neither
    inputs nor outputs) and its input files."""
    from . import provenance

    skip = {"func", "reads", "outputs", "stage", *args.reads, *args.outputs}
    parameters = {k: v for k, v in sorted(vars(args).items()) if k not in skip}
    for name in _NAMED & set(args.reads):  # the names given to the inputs
        parameters[f"{name}_names"] = [item.partition("=")[0] for item in getattr(args, name)]
    provenance.begin(args.stage, parameters, _paths(args, args.reads))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    terminate_on_sigterm()
    outputs = [getattr(args, name, None) for name in args.outputs]
    if args.stage != "serve":  # a service writes no outputs
        _begin_provenance(args)
    prefix = f"gnnjec {args.stage}"
    try:
        args.func(args)
        return 0
    except InputError as err:
        message, status = f"{prefix}: error: {err}", 2
    except FileNotFoundError as err:  # an input that an earlier stage (or the user) did not provide
        message, status = (f"{prefix}: error: {err.filename}: no such file; check the path, or run the stage "
                           "that writes it"), 2
    except CheckFailed as err:
        message, status = f"{prefix}: failed: {err}", 1
    except Terminated as err:
        resume = " (training goes on from its last.pt)" if args.stage == "train" else ""
        message, status = f"{prefix}: stopped by {err}; its unfinished outputs are removed; rerun it{resume}", 143
    except KeyboardInterrupt:
        message, status = f"{prefix}: interrupted; nothing it wrote is left", 130
    except Exception as err:  # a bug, not bad input: keep the traceback for the report, end with one line
        log.exception("unexpected error")
        first = (str(err).strip().splitlines() or [""])[0]
        message, status = f"{prefix}: internal error: {type(err).__name__}: {first} (a bug: please report it with the log)", 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for path in _remove_written(outputs):
        log.info("removed %s (written by this failed run)", path)
    print(message, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
