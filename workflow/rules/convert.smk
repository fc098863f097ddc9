# Convert: one job per input file (local or root://), then one merge of the training samples' files into
# train/val/test (an evaluation-only sample's files are evaluated on apart: rule evaluate_sample).


rule convert:
    input:
        convert_input,
    output:
        spec.CLOUD_PART,
    wildcard_constraints:
        index=r"\d+",
    # on a cluster, the profiles pack many files into one job (group-components: convert=N)
    group:
        "convert"
    params:
        path=lambda w: PLAN.source(w.sample, w.index),
        selection=json_arg(config["selection"]),
        split=json_arg(config["split"]),
        step_size=config["convert"]["step_size"],
    log:
        "results/logs/convert/{sample}/{index}.log",
    benchmark:
        "results/benchmarks/convert/{sample}/{index}.tsv"
    resources:
        **sized("convert"),
        # HTCondor sends the X509 proxy with a job that reads over XRootD
        htcondor_submit_use_x509userproxy=lambda w: PLAN.source(w.sample, w.index) in PLAN.urls,
    conda:
        ENV
    shell:
        "gnnjec convert {params.path:q} --output {output} --selection {params.selection:q}"
        " --split {params.split:q} --step-size {params.step_size:q} > {log} 2>&1"


rule merge_clouds:
    input:
        PLAN.cloud_parts(),
    output:
        **PLAN.split_files(),
    log:
        "results/logs/merge_clouds.log",
    benchmark:
        "results/benchmarks/merge_clouds.tsv"
    resources:
        **sized("merge_clouds"),
    conda:
        ENV
    shell:
        "gnnjec merge-clouds {input} --train {output.train} --val {output.val} --test {output.test} > {log} 2>&1"
