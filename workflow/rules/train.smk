# Train: one job per hyperparameter grid point, then the selection on validation loss.


rule train:
    input:
        train=SPLIT_FILES["train"],
        val=SPLIT_FILES["val"],
    output:
        model="results/training/{point}/model.pt",
        history="results/training/{point}/history.json",
    wildcard_constraints:
        point="|".join(POINTS),
    params:
        hparams=lambda w: json_arg(POINTS[w.point]),
        inputs=json_arg(config["features"]),
        device=config["training"]["device"],
    threads: config["training"]["threads"]
    log:
        "results/logs/train/{point}.log",
    benchmark:
        "results/benchmarks/train/{point}.tsv"
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=TRAIN_GPUS,
    conda:
        ENV
    shell:
        "{GNNJEC_TRAIN} train --train {input.train} --val {input.val} --model {output.model}"
        " --history {output.history} --hparams {params.hparams:q} --inputs {params.inputs:q}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


rule select_model:
    input:
        expand("results/training/{point}/history.json", point=POINTS),
    output:
        "results/training/best.json",
    params:
        histories=lambda w, input: [f"{p}={h}" for p, h in zip(POINTS, input)],
    log:
        "results/logs/select_model.log",
    benchmark:
        "results/benchmarks/select_model.tsv"
    conda:
        ENV
    shell:
        "{GNNJEC} select {params.histories} --output {output} > {log} 2>&1"
