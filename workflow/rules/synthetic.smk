# Demo data: simulated events (Pythia 8 and a CMS-like detector, or the fast toy), their
# standard correction, and PFNano-layout ROOT files.


rule synthetic_jec:
    output:
        "results/synthetic/standard_jec.json",
    params:
        generator=config["synthetic_generator"],
        seed=config["synthetic_jec"]["seed"],
        events=config["synthetic_jec"]["events"],
    log:
        "results/logs/synthetic_jec.log",
    benchmark:
        "results/benchmarks/synthetic_jec.tsv"
    threads: 2
    resources:
        **sized(lambda w: SIZES.synthetic_jec(threads=2)),
    conda:
        ENV
    shell:
        "{GNNJEC} synthetic-jec --generator {params.generator} --processes {threads} --seed {params.seed}"
        " --events {params.events} --output {output} > {log} 2>&1"


rule synthetic_pfnano:
    input:
        jec=rules.synthetic_jec.output[0],
    output:
        "results/synthetic/{sample}/{index}.root",
    wildcard_constraints:
        index=r"\d+",
    params:
        generator=config["synthetic_generator"],
        events=lambda w: config["samples"][w.sample]["synthetic"]["events_per_file"],
        seed=lambda w: config["samples"][w.sample]["synthetic"]["seed"],
    log:
        "results/logs/synthetic_pfnano/{sample}/{index}.log",
    benchmark:
        "results/benchmarks/synthetic_pfnano/{sample}/{index}.tsv"
    resources:
        **sized(lambda w: SIZES.synthetic_pfnano(w.sample)),
    conda:
        ENV
    shell:
        "{GNNJEC} synthetic --generator {params.generator} --events {params.events} --seed {params.seed} --file-index {wildcards.index}"
        " --jec {input.jec} --output {output} > {log} 2>&1"
