# Convert: one job per input file (local or root://), then one merge into train/val/test.


def convert_input(wildcards):
    path = SAMPLE_FILES[wildcards.sample][int(wildcards.index)]
    return [] if is_url(path) else [path]


rule convert:
    input:
        convert_input,
    output:
        "results/clouds/{sample}/{index}.parquet",
    wildcard_constraints:
        index=r"\d+",
    # on a cluster, the profiles pack many files into one job (group-components: convert=N)
    group:
        "convert"
    params:
        path=lambda w: SAMPLE_FILES[w.sample][int(w.index)],
        selection=json_arg(config["selection"]),
        split=json_arg(config["split"]),
        step_size=config["convert"]["step_size"],
    log:
        "results/logs/convert/{sample}/{index}.log",
    benchmark:
        "results/benchmarks/convert/{sample}/{index}.tsv"
    resources:
        **sized(lambda w: SIZES.convert(w.sample, int(w.index))),  # memory flat in the file's size
        # HTCondor sends the X509 proxy with a job that reads over XRootD
        htcondor_submit_use_x509userproxy=lambda w: is_url(SAMPLE_FILES[w.sample][int(w.index)]),
    conda:
        ENV
    shell:
        "{GNNJEC} convert {params.path:q} --output {output} --selection {params.selection:q}"
        " --split {params.split:q} --step-size {params.step_size:q} > {log} 2>&1"


rule merge_clouds:
    input:
        CLOUD_PARTS,
    output:
        **SPLIT_FILES,
    log:
        "results/logs/merge_clouds.log",
    benchmark:
        "results/benchmarks/merge_clouds.tsv"
    resources:
        **sized(lambda w: SIZES.merge()),
    conda:
        ENV
    shell:
        "{GNNJEC} merge {input} --train {output.train} --val {output.val} --test {output.test} > {log} 2>&1"
