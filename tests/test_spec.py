"""Each fact written once: the spec's stages are the rules and the commands, its plots have captions, the schema
on disk is complete and current, and the defaults of the commands are the configuration's."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gnnjec import cli, config, schema, spec

REPO = Path(__file__).resolve().parents[1]

# a target, train's rung form, the report, and evaluate's and plots' forms for an evaluation-only sample
RULES_WITHOUT_A_STAGE = {"all", "train_rung", "thesis_plots", "evaluate_sample", "sample_plots"}


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> set[str]:
    """The rules of the workflow, as Snakemake lists them."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules", "--snakefile",
                           str(REPO / "workflow" / "Snakefile"), "--configfile", str(REPO / "config" / "config.yaml"),
                           "--directory", str(tmp_path_factory.mktemp("rules"))],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "CONDOR_CONFIG": "/dev/null",
                               "HOME": str(tmp_path_factory.mktemp("home"))})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}  # a name, then its docstring


def test_every_stage_is_a_rule_of_its_name_and_every_rule_a_stage(rules):
    stages = {spec.rule_name(stage) for stage in spec.STAGES if stage not in spec.WITHOUT_A_RULE}
    assert stages <= rules, stages - rules
    assert rules - stages == RULES_WITHOUT_A_STAGE


@pytest.mark.parametrize("stage", list(spec.STAGES))
def test_every_stage_has_a_command_in_its_module(stage):
    command = cli.command(stage)
    arguments = {action.dest for action in cli.stage_parser(stage)._actions}
    assert {*command.reads, *command.outputs} <= arguments, f"{stage}: reads or outputs that are not its arguments"


def test_the_command_line_lists_exactly_the_stages():
    proc = subprocess.run([sys.executable, "-m", "gnnjec", "--help"], capture_output=True, text=True, check=True)
    listed = {line.split()[0] for line in proc.stdout.split("positional arguments:")[1].split("options:")[0]
              .splitlines()[2:] if line.startswith("    ") and not line.startswith("     ")}
    assert listed == set(spec.STAGES)


def test_every_plot_has_a_caption_and_every_caption_a_subject():
    captions = {p.stem for p in (REPO / "workflow" / "report").glob("*.rst")} - {"workflow"}
    plots = {*spec.PLOTS, *spec.TRAINING_PLOTS}
    assert plots <= captions, plots - captions
    assert set(spec.SAMPLE_PLOTS) <= set(spec.PLOTS)  # an evaluation sample's plots have the same captions
    tables = {"metrics_json", "metrics_csv", "summary", "points", "config"}  # the evaluation's tables, the grid, config
    assert captions - plots == tables


def test_the_schema_on_disk_is_complete_and_current():
    text = config.SCHEMA.read_text()
    assert config.render_schema(text) == text, "run python -m gnnjec.config --write-schema"
    document = yaml.safe_load(text)
    hparams = document["definitions"]["hparams"]["properties"]
    assert hparams["model"]["enum"] == list(spec.FAMILIES)
    from gnnjec.demo.events import PROCESSES

    synthetic = document["properties"]["samples"]["additionalProperties"]["properties"]["synthetic"]
    assert synthetic["properties"]["process"]["enum"] == list(PROCESSES)
    training = document["properties"]["training"]["properties"]
    assert set(training["grid"]["properties"]) == set(hparams)
    assert set(training["random"]["properties"]["space"]["properties"]) == set(hparams)
    # the package reads the file the workflow validates with
    assert config.SCHEMA.resolve() == (REPO / "workflow" / "schemas" / "config.schema.yaml").resolve()


def test_a_stale_generated_part_is_written_anew_and_the_check_fails(tmp_path):
    text = config.SCHEMA.read_text()
    families = ", ".join(f'"{f}"' for f in spec.FAMILIES)
    stale = text.replace(f"enum: [{families}]", "enum: [\"pfn\"]")
    assert stale != text
    assert config.render_schema(stale) == text
    proc = subprocess.run([sys.executable, "-m", "gnnjec.config", "--check-schema"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_command_defaults_are_the_configurations():
    defaults = {
        ("export-onnx", "jets"): "export.check_jets", ("export-onnx", "tolerance"): "export.tolerance",
        ("triton-model", "max_batch_size"): "serving.max_batch_size",
        ("triton-model", "max_queue_delay_us"): "serving.max_queue_delay_us",
        ("plots", "energy"): "plots.energy_tev", ("plots", "experiment"): "plots.experiment",
        ("plots", "label"): "plots.label", ("training-plots", "energy"): "plots.energy_tev",
        ("training-plots", "label"): "plots.label", ("train", "device"): "training.device",
    }
    for (stage, argument), key in defaults.items():
        assert cli.stage_parser(stage).get_default(argument) == schema.schema_default(key), (stage, argument)


def test_every_family_has_a_label_and_measured_rates():
    """A family added to the presets is named in plots and tables, and the plan can size its jobs."""
    from gnnjec import resources

    assert set(spec.FAMILIES) | {spec.STANDARD} == set(spec.METHOD_LABELS)
    for table in (*resources.TRAIN_PER_S.values(), *resources.VALIDATE_PER_S.values(), resources.INFER_PER_S):
        assert set(table) == set(spec.FAMILIES)
