# Demo data: a synthetic detector, its standard correction, and PFNano-layout ROOT files.


rule synthetic_jec:
    output:
        "results/synthetic/standard_jec.json",
    params:
        seed=config["synthetic_jec"]["seed"],
        events=config["synthetic_jec"]["events"],
    log:
        "results/logs/synthetic_jec.log",
    benchmark:
        "results/benchmarks/synthetic_jec.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        ENV
    shell:
        "{GNNJEC} synthetic-jec --seed {params.seed} --events {params.events} --output {output} > {log} 2>&1"


rule synthetic_pfnano:
    input:
        jec=rules.synthetic_jec.output[0],
    output:
        "results/synthetic/{sample}/{index}.root",
    wildcard_constraints:
        index=r"\d+",
    params:
        events=lambda w: config["samples"][w.sample]["synthetic"]["events_per_file"],
        seed=lambda w: config["samples"][w.sample]["synthetic"]["seed"],
    log:
        "results/logs/synthetic_pfnano/{sample}/{index}.log",
    benchmark:
        "results/benchmarks/synthetic_pfnano/{sample}/{index}.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        ENV
    shell:
        "{GNNJEC} synthetic --events {params.events} --seed {params.seed} --file-index {wildcards.index}"
        " --jec {input.jec} --output {output} > {log} 2>&1"
