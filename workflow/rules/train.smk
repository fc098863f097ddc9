# Train: the points of training.grid (or training.random), each one job; either every point to the
# end, or synchronous successive halving (training.halving): rungs of growing epoch budgets, the best
# 1/eta of each rung continuing their own training in the next. Then one selection on validation loss.
# A training planned for longer than training.max_job_hours runs as rungs that keep every point ("legs"):
# jobs of consecutive epochs, each going on from the state the last one ended with. (gnnjec.plan)


rule train:
    input:
        **PLAN.split_files(),
    output:
        model=spec.TRAINED.replace("{name}", "model.pt"),
        history=spec.TRAINED.replace("{name}", "history.json"),
    wildcard_constraints:
        point=spec.POINT_PATTERN,
    params:
        **TRAIN_PARAMS,
    threads: config["training"]["threads"]
    log:
        "results/logs/train/{point}.log",
    benchmark:
        "results/benchmarks/train/{point}.tsv"
    resources:
        **sized("train"),
        **PLAN.gpu_resources,
    conda:
        ENV
    shell:
        f"{TRAIN} > {{log}} 2>&1"


rule train_rung:
    input:
        unpack(rung_previous),
        **PLAN.split_files(),
    output:
        model=spec.RUNG_TRAINED.replace("{name}", "model.pt"),
        history=spec.RUNG_TRAINED.replace("{name}", "history.json"),
        state=spec.RUNG_TRAINED.replace("{name}", "state.pt"),
    wildcard_constraints:
        point=spec.POINT_PATTERN,
        rung=r"\d+",
    params:
        **TRAIN_PARAMS,
        until=lambda w: PLAN.rungs[int(w.rung)]["epochs"],
        start=lambda w, input: f"--continue-from {input.state}" if int(w.rung) > 0 else "",
    threads: config["training"]["threads"]
    log:
        "results/logs/train/{point}/rung{rung}.log",
    benchmark:
        "results/benchmarks/train/{point}/rung{rung}.tsv"
    resources:
        **sized("train_rung"),
        **PLAN.gpu_resources,
    conda:
        ENV
    shell:
        f"{TRAIN} --until-epoch {{params.until}} --state {{output.state}} {{params.start}} > {{log}} 2>&1"


checkpoint promote:
    input:
        lambda w: rung_histories(w).values(),
    output:
        spec.PROMOTION,
    wildcard_constraints:
        rung=r"\d+",
    params:
        histories=lambda w: named(rung_histories(w)),
        keep=lambda w: PLAN.rungs[int(w.rung) + 1]["points"],
    log:
        "results/logs/promote/rung{rung}.log",
    benchmark:
        "results/benchmarks/promote/rung{rung}.tsv"
    conda:
        ENV
    shell:
        "gnnjec promote {params.histories} --keep {params.keep} --rung {wildcards.rung}"
        " --output {output} > {log} 2>&1"


rule select_model:
    input:
        lambda w: trained("history.json").values(),
    output:
        best=spec.BEST,
        table=report(spec.POINTS_TABLE, caption="../report/points.rst", category="Training"),
    params:
        histories=lambda w: named(trained("history.json")),
    log:
        "results/logs/select_model.log",
    benchmark:
        "results/benchmarks/select_model.tsv"
    conda:
        ENV
    shell:
        "gnnjec select-model {params.histories} --output {output.best} --table {output.table} > {log} 2>&1"
