# Evaluate: ONNX Runtime on the test split (every exported model family), physics metrics with
# bootstrap errors, the plots, and the report's captions (workflow/report/).


rule evaluate:
    input:
        onnx=PLAN.exported().values(),
        clouds=PLAN.split_files()["test"],
    output:
        predictions=spec.PREDICTIONS,
        metrics=report(spec.METRICS, caption="../report/metrics_json.rst", category="Metrics"),
        summary=report(spec.SUMMARY, caption="../report/summary.rst", category="Metrics"),
        table=report(spec.METRICS_TABLE, caption="../report/metrics_csv.rst", category="Metrics"),
    params:
        models=named(PLAN.exported()),
        config=json_arg(config["evaluation"]),
    threads: 2
    log:
        "results/logs/evaluate.log",
    benchmark:
        "results/benchmarks/evaluate.tsv"
    resources:
        **sized("evaluate"),
    conda:
        ENV
    shell:
        # the summary table goes to the terminal too
        "gnnjec evaluate --onnx {params.models} --clouds {input.clouds} --predictions {output.predictions}"
        " --metrics {output.metrics} --summary {output.summary} --table {output.table} --config {params.config:q}"
        " --threads {threads} 2> {log}"


rule plots:
    input:
        predictions=rules.evaluate.output.predictions,
        metrics=rules.evaluate.output.metrics,
    output:
        captioned(spec.PLOTS),
    params:
        outdir=lambda w, output: os.path.dirname(output[0]),
        dataset=config["dataset_label"],
        energy=config["plots"]["energy_tev"],
        experiment=config["plots"]["experiment"],
        label=config["plots"]["label"],
    log:
        "results/logs/plots.log",
    benchmark:
        "results/benchmarks/plots.tsv"
    resources:
        **sized("plots"),
    conda:
        ENV
    shell:
        "gnnjec plots --predictions {input.predictions} --metrics {input.metrics} --outdir {params.outdir}"
        " --dataset {params.dataset:q} --energy {params.energy} --experiment={params.experiment:q}"
        " --label {params.label:q} > {log} 2>&1"


rule training_plots:
    input:
        best=rules.select_model.output.best,
    output:
        captioned(spec.TRAINING_PLOTS),
    params:
        outdir=lambda w, output: os.path.dirname(output[0]),
        energy=config["plots"]["energy_tev"],
        experiment=config["plots"]["experiment"],
        label=config["plots"]["label"],
    log:
        "results/logs/training_plots.log",
    benchmark:
        "results/benchmarks/training_plots.tsv"
    conda:
        ENV
    shell:
        "gnnjec training-plots --best {input.best} --outdir {params.outdir} --energy {params.energy}"
        " --experiment={params.experiment:q} --label {params.label:q} > {log} 2>&1"


rule report_config:
    output:
        report(spec.REPORT_CONFIG, caption="../report/config.rst", category="Configuration"),
    params:
        config=json_arg(config),
    log:
        "results/logs/report_config.log",
    conda:
        ENV
    shell:
        "gnnjec report-config --config {params.config:q} --output {output} > {log} 2>&1"


# Snakemake writes its report only from its own command line (--report), over the DAG of a workflow: there is no
# API a job could call instead, and --report-after-run would write one after every run. So this one rule runs
# Snakemake again, in report mode over the finished outputs, with the configuration this run used.
rule thesis_plots:
    """Every plot and table, and the HTML report of them (self-contained: open it anywhere)."""
    input:
        reported=[*rules.plots.output, *rules.training_plots.output, *rules.evaluate.output[1:],
                  rules.select_model.output.table],
        config=rules.report_config.output[0],
    output:
        spec.REPORT,
    params:
        snakefile=workflow.main_snakefile,
    log:
        "results/logs/thesis_plots.log",
    conda:
        ENV
    shell:
        "snakemake --snakefile {params.snakefile:q} --configfile {input.config} --nolock"
        " --report {output} {input.reported} {input.config} > {log} 2>&1"
