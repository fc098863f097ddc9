# Demo data: Pythia 8 events and a CMS-like detector (gnnjec.demo, the `demo` extra), their standard
# correction (always derived on QCD), and PFNano-layout ROOT files of a sample's hard process (qcd or ttbar).


rule synthetic_jec:
    output:
        spec.SYNTHETIC_JEC,
    params:
        seed=config["synthetic_jec"]["seed"],
        events=config["synthetic_jec"]["events"],
    log:
        "results/logs/synthetic_jec.log",
    benchmark:
        "results/benchmarks/synthetic_jec.tsv"
    threads: 2
    resources:
        **sized("synthetic_jec"),
    conda:
        ENV
    shell:
        "gnnjec synthetic-jec --processes {threads} --seed {params.seed} --events {params.events}"
        " --output {output} > {log} 2>&1"


rule synthetic_pfnano:
    input:
        jec=rules.synthetic_jec.output[0],
    output:
        spec.SYNTHETIC_FILE,
    wildcard_constraints:
        index=r"\d+",
    params:
        events=lambda w: config["samples"][w.sample]["synthetic"]["events_per_file"],
        seed=lambda w: config["samples"][w.sample]["synthetic"]["seed"],
        process=lambda w: config["samples"][w.sample]["synthetic"]["process"],
    log:
        "results/logs/synthetic_pfnano/{sample}/{index}.log",
    benchmark:
        "results/benchmarks/synthetic_pfnano/{sample}/{index}.tsv"
    resources:
        **sized("synthetic_pfnano"),
    conda:
        ENV
    shell:
        "gnnjec synthetic-pfnano --events {params.events} --seed {params.seed} --file-index {wildcards.index}"
        " --process {params.process} --jec {input.jec} --output {output} > {log} 2>&1"
