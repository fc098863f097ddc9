# Evaluate: ONNX Runtime on the test split (every exported model family), physics metrics with
# bootstrap errors, the plots, and the report's captions (workflow/report/).


rule evaluate:
    input:
        onnx=list(EXPORTED.values()),
        clouds=SPLIT_FILES["test"],
    output:
        predictions="results/evaluation/predictions.parquet",
        metrics=report("results/evaluation/metrics.json", caption="../report/metrics_json.rst", category="Metrics"),
        summary=report("results/evaluation/summary.txt", caption="../report/summary.rst", category="Metrics"),
        table=report("results/evaluation/metrics.csv", caption="../report/metrics_csv.rst", category="Metrics"),
    params:
        models=[f"{family}={path}" for family, path in EXPORTED.items()],
        config=json_arg(config["evaluation"]),
    threads: 2
    log:
        "results/logs/evaluate.log",
    benchmark:
        "results/benchmarks/evaluate.tsv"
    resources:
        **sized(lambda w: SIZES.evaluate(FAMILIES, threads=2)),
    conda:
        ENV
    shell:
        # the summary table goes to the terminal too
        "{GNNJEC} evaluate --onnx {params.models} --clouds {input.clouds} --predictions {output.predictions}"
        " --metrics {output.metrics} --summary {output.summary} --table {output.table} --config {params.config:q}"
        " --threads {threads} 2> {log}"


# the names of gnnjec.plotting.PLOTS and TRAINING_PLOTS (a test keeps them equal)
PLOTS = ["response_distributions", "closure", "median_response", "flavour_difference", "response_vs_eta", "resolution",
         "flavour_spread"]
TRAINING_PLOTS = ["loss_curves", "validation_loss"]


def captioned(names, category):
    """The PNG of each plot, in the report under ``category`` with its caption (workflow/report/<name>.rst),
    and the PDF beside it."""
    out = []
    for name in names:
        out.append(report(f"results/plots/{name}.png", caption=f"../report/{name}.rst", category=category))
        out.append(f"results/plots/{name}.pdf")
    return out


rule plots:
    input:
        predictions=rules.evaluate.output.predictions,
        metrics=rules.evaluate.output.metrics,
    output:
        captioned(PLOTS, "Physics"),
    params:
        dataset=config["dataset_label"],
        energy=config["plots"]["energy_tev"],
        cms_text=config["plots"]["cms_text"],
    log:
        "results/logs/plots.log",
    benchmark:
        "results/benchmarks/plots.tsv"
    resources:
        **sized(lambda w: SIZES.plots(FAMILIES)),  # all test-split predictions in memory
    conda:
        ENV
    shell:
        "{GNNJEC} plots --predictions {input.predictions} --metrics {input.metrics} --outdir results/plots"
        " --dataset {params.dataset:q} --energy {params.energy} --cms-text {params.cms_text:q} > {log} 2>&1"


rule training_plots:
    input:
        best=rules.select_model.output.best,
    output:
        captioned(TRAINING_PLOTS, "Training"),
    params:
        energy=config["plots"]["energy_tev"],
        cms_text=config["plots"]["cms_text"],
    log:
        "results/logs/training_plots.log",
    benchmark:
        "results/benchmarks/training_plots.tsv"
    conda:
        ENV
    shell:
        "{GNNJEC} training-plots --best {input.best} --outdir results/plots --energy {params.energy}"
        " --cms-text {params.cms_text:q} > {log} 2>&1"


rule report_config:
    output:
        report("results/report/config.yaml", caption="../report/config.rst", category="Configuration"),
    params:
        config=json_arg(config),
    log:
        "results/logs/report_config.log",
    conda:
        ENV
    shell:
        "{GNNJEC} dump-config --config {params.config:q} --output {output} > {log} 2>&1"


REPORTED = [*rules.plots.output, *rules.training_plots.output, *rules.evaluate.output[1:], rules.select_model.output.table]


rule thesis_plots:
    """Every plot and table, and the HTML report of them (self-contained: open it anywhere)."""
    input:
        reported=REPORTED,
        config=rules.report_config.output[0],
    output:
        "results/report/thesis_plots.html",
    log:
        "results/logs/thesis_plots.log",
    params:
        snakefile=workflow.main_snakefile,
    shell:
        # Snakemake's own report, over the finished outputs, with the configuration this run used
        "{PYTHONPATH} python -m snakemake --snakefile {params.snakefile:q} --configfile {input.config} --nolock"
        " --report {output} {input} > {log} 2>&1"
