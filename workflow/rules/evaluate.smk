# Evaluate: ONNX Runtime on the test split (every exported model family), physics metrics with
# bootstrap errors, the plots, and the report's captions (workflow/report/); the same for each evaluation-only
# sample (samples.<name>.role: evaluation), on all its jets, in a folder of its own.


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
        f"{EVALUATE} 2> {{log}}"


rule evaluate_sample:
    input:
        onnx=PLAN.exported().values(),
        clouds=lambda w: PLAN.cloud_parts(w.sample),
    output:
        predictions=spec.SAMPLE_PREDICTIONS,
        metrics=report(spec.SAMPLE_METRICS, caption="../report/metrics_json.rst", **EVALUATION_SAMPLES),
        summary=report(spec.SAMPLE_SUMMARY, caption="../report/summary.rst", **EVALUATION_SAMPLES),
        table=report(spec.SAMPLE_METRICS_TABLE, caption="../report/metrics_csv.rst", **EVALUATION_SAMPLES),
    wildcard_constraints:
        sample=PLAN.evaluation_sample_pattern(),
    params:
        models=named(PLAN.exported()),
        config=json_arg(config["evaluation"]),
    threads: 2
    log:
        "results/logs/evaluate_sample/{sample}.log",
    benchmark:
        "results/benchmarks/evaluate_sample/{sample}.tsv"
    resources:
        **sized("evaluate_sample"),
    conda:
        ENV
    shell:
        f"{EVALUATE} --sample {{wildcards.sample}} 2> {{log}}"


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
        f"{PLOTS} > {{log}} 2>&1"


rule sample_plots:
    input:
        predictions=rules.evaluate_sample.output.predictions,
        metrics=rules.evaluate_sample.output.metrics,
    output:
        captioned(spec.SAMPLE_PLOTS, spec.SAMPLE_PLOT, **EVALUATION_SAMPLES),
    wildcard_constraints:
        sample=PLAN.evaluation_sample_pattern(),
    params:
        outdir=lambda w, output: os.path.dirname(output[0]),
        dataset=lambda w: f"{w.sample} (evaluation only)",
        energy=config["plots"]["energy_tev"],
        experiment=config["plots"]["experiment"],
        label=config["plots"]["label"],
        plots=spec.SAMPLE_PLOTS,
    log:
        "results/logs/sample_plots/{sample}.log",
    benchmark:
        "results/benchmarks/sample_plots/{sample}.tsv"
    resources:
        **sized("sample_plots"),
    conda:
        ENV
    shell:
        f"{PLOTS} --plots {{params.plots}} > {{log}} 2>&1"


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
                  rules.select_model.output.table, *PLAN.sample_outputs()],
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
