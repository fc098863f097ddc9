# Train: the points of training.grid (or training.random), each one job; either every point to the
# end, or synchronous successive halving (training.halving): rungs of growing epoch budgets, the best
# 1/eta of each rung continuing their own training in the next. Then one selection on validation loss.
# A training planned for longer than training.max_job_hours runs as rungs that keep every point ("legs"):
# jobs of consecutive epochs, each going on from the state the last one ended with.

HALVING = config["training"].get("halving")
EPOCHS = config["training"]["defaults"].get("epochs", HP_DEFAULTS["epochs"])
LEGS = 1 if HALVING else legs(SIZES)
# no rungs when every point trains to the end in one job
PLAN = (halving_plan(len(POINTS), EPOCHS, HALVING["eta"], HALVING["min_epochs"]) if HALVING else
        legs_plan(len(POINTS), max(hp.get("epochs", EPOCHS) for hp in POINTS.values()), LEGS) if LEGS > 1 else [])
LAST_RUNG = len(PLAN) - 1


RUNG_EPOCHS = added_epochs(PLAN)  # per rung, the epochs its jobs add to a point's training


if not workflow.remote_exec:  # planning (a dry run too): the whole search's cost, and what would not fit
    print(f"gnnjec: {training_plan(SIZES, PLAN, halving=bool(HALVING))}", file=sys.stderr)
    # each point's longest job
    jobs = {f"train {point}": max((SIZES.train(point, epochs) for epochs in RUNG_EPOCHS),
                                  key=lambda cost: cost.minutes, default=SIZES.train(point)) for point in POINTS}
    for line in too_long(jobs, SIZES.max_minutes):
        print(f"gnnjec: warning: {line}", file=sys.stderr)
POINT_PATTERN = r"(pfn|pfn-lite|particlenet|particlenet-lite)-[0-9a-f]{8}"

TRAIN_PARAMS = dict(
    hparams=lambda w: json_arg(POINTS[w.point]),
    inputs=json_arg(config["features"]),
    device=config["training"]["device"],
)
# the GPU's least compute capability, checked by the job too: from its resources, which (unlike params) a
# change does not retrain for
GPU_CHECK = " --gpu-min-capability {resources.gpus_minimum_capability}" if "gpus_minimum_capability" in GPU_RESOURCES else ""
TRAIN_SHELL = (
    "{GNNJEC_TRAIN} train --train {input.train} --val {input.val} --model {output.model}"
    " --history {output.history} --hparams {params.hparams:q} --inputs {params.inputs:q}"
    " --device {params.device}" + GPU_CHECK + " --threads {threads}"
)


rule train:
    input:
        train=SPLIT_FILES["train"],
        val=SPLIT_FILES["val"],
    output:
        model="results/training/{point}/model.pt",
        history="results/training/{point}/history.json",
    wildcard_constraints:
        point=POINT_PATTERN,
    params:
        **TRAIN_PARAMS,
    threads: config["training"]["threads"]
    log:
        "results/logs/train/{point}.log",
    benchmark:
        "results/benchmarks/train/{point}.tsv"
    resources:
        **sized(lambda w: SIZES.train(w.point)),
        **GPU_RESOURCES,
    conda:
        ENV
    shell:
        TRAIN_SHELL + " > {log} 2>&1"


def rung_entrants(rung):
    """The points that train in ``rung``: all of them in rung 0 (and in every leg), then those the previous
    rung promoted."""
    if rung == 0 or not HALVING:
        return list(POINTS)
    with checkpoints.promote.get(rung=rung - 1).output[0].open() as f:
        return json.load(f)["promoted"]


def rung_previous(wildcards):
    """What a rung's job goes on from: the point's state at the end of the previous rung (and, with halving,
    the promotion that let it go on)."""
    rung = int(wildcards.rung)
    if rung == 0:
        return []
    previous = {"state": f"results/training/{wildcards.point}/rung{rung - 1}/state.pt"}
    if HALVING:
        previous["promotion"] = f"results/training/rung{rung - 1}.json"
    return previous


rule train_rung:
    input:
        unpack(rung_previous),
        train=SPLIT_FILES["train"],
        val=SPLIT_FILES["val"],
    output:
        model="results/training/{point}/rung{rung}/model.pt",
        history="results/training/{point}/rung{rung}/history.json",
        state="results/training/{point}/rung{rung}/state.pt",
    wildcard_constraints:
        point=POINT_PATTERN,
        rung=r"\d+",
    params:
        **TRAIN_PARAMS,
        until=lambda w: PLAN[int(w.rung)]["epochs"],
        start=lambda w, input: f"--continue-from {input.state}" if int(w.rung) > 0 else "",
    threads: config["training"]["threads"]
    log:
        "results/logs/train/{point}/rung{rung}.log",
    benchmark:
        "results/benchmarks/train/{point}/rung{rung}.tsv"
    resources:
        # the epochs this rung adds to the point's training
        **sized(lambda w: SIZES.train(w.point, RUNG_EPOCHS[int(w.rung)])),
        **GPU_RESOURCES,
    conda:
        ENV
    shell:
        TRAIN_SHELL + " --until-epoch {params.until} --state {output.state} {params.start} > {log} 2>&1"


checkpoint promote:
    input:
        lambda w: expand("results/training/{point}/rung{rung}/history.json", point=rung_entrants(int(w.rung)),
                         rung=w.rung),
    output:
        "results/training/rung{rung}.json",
    wildcard_constraints:
        rung=r"\d+",
    params:
        histories=lambda w, input: [f"{p}={h}" for p, h in zip(rung_entrants(int(w.rung)), input)],
        keep=lambda w: PLAN[int(w.rung) + 1]["points"],
    log:
        "results/logs/promote/rung{rung}.log",
    benchmark:
        "results/benchmarks/promote/rung{rung}.tsv"
    conda:
        ENV
    shell:
        "{GNNJEC} promote {params.histories} --keep {params.keep} --rung {wildcards.rung}"
        " --output {output} > {log} 2>&1"


def trained(name):
    """Per point, the path of its ``name`` (model.pt, history.json) at the end of its training:
    the point's folder, or with halving the folder of the last rung it reached."""
    if not PLAN:
        return {point: f"results/training/{point}/{name}" for point in POINTS}
    reached = {}
    for rung in range(LAST_RUNG + 1):
        for point in rung_entrants(rung):
            reached[point] = rung
    return {point: f"results/training/{point}/rung{rung}/{name}" for point, rung in reached.items()}


rule select_model:
    input:
        lambda w: list(trained("history.json").values()),
    output:
        best="results/training/best.json",
        table=report("results/training/points.tsv", caption="../report/points.rst", category="Training"),
    params:
        histories=lambda w: [f"{p}={h}" for p, h in trained("history.json").items()],
    log:
        "results/logs/select_model.log",
    benchmark:
        "results/benchmarks/select_model.tsv"
    conda:
        ENV
    shell:
        "{GNNJEC} select {params.histories} --output {output.best} --table {output.table} > {log} 2>&1"
