# Evaluate: ONNX Runtime on the test split, physics metrics, and the plots.


rule evaluate:
    input:
        onnx=rules.export_onnx.output.onnx,
        clouds=SPLIT_FILES["test"],
    output:
        predictions="results/evaluation/predictions.parquet",
        metrics="results/evaluation/metrics.json",
        summary="results/evaluation/summary.txt",
        table="results/evaluation/metrics.csv",
    params:
        config=json_arg(config["evaluation"]),
    threads: 2
    log:
        "results/logs/evaluate.log",
    benchmark:
        "results/benchmarks/evaluate.tsv"
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        ENV
    shell:
        # the summary table goes to the terminal too
        "{GNNJEC} evaluate --onnx {input.onnx} --clouds {input.clouds} --predictions {output.predictions}"
        " --metrics {output.metrics} --summary {output.summary} --table {output.table} --config {params.config:q}"
        " --threads {threads} 2> {log}"


# the names of gnnjec.plotting.PLOTS and TRAINING_PLOTS (a test keeps them equal)
PLOTS = ["response_distributions", "closure", "median_response", "flavour_difference", "response_vs_eta", "resolution",
         "flavour_spread"]
TRAINING_PLOTS = ["loss_curves", "validation_loss"]


rule plots:
    input:
        predictions=rules.evaluate.output.predictions,
        metrics=rules.evaluate.output.metrics,
    output:
        expand("results/plots/{name}.{ext}", name=PLOTS, ext=["png", "pdf"]),
    params:
        dataset=config["dataset_label"],
        energy=config["plots"]["energy_tev"],
        cms_text=config["plots"]["cms_text"],
    log:
        "results/logs/plots.log",
    benchmark:
        "results/benchmarks/plots.tsv"
    resources:
        mem_mb=4000,  # all test-split predictions in memory
        runtime=30,
    conda:
        ENV
    shell:
        "{GNNJEC} plots --predictions {input.predictions} --metrics {input.metrics} --outdir results/plots"
        " --dataset {params.dataset:q} --energy {params.energy} --cms-text {params.cms_text:q} > {log} 2>&1"


rule training_plots:
    input:
        best=rules.select_model.output.best,
    output:
        expand("results/plots/{name}.{ext}", name=TRAINING_PLOTS, ext=["png", "pdf"]),
    params:
        energy=config["plots"]["energy_tev"],
        cms_text=config["plots"]["cms_text"],
    log:
        "results/logs/training_plots.log",
    benchmark:
        "results/benchmarks/training_plots.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "{GNNJEC} training-plots --best {input.best} --outdir results/plots --energy {params.energy}"
        " --cms-text {params.cms_text:q} > {log} 2>&1"
