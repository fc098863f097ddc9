# Export: each model family's best point to ONNX, checked against torch on held-out jets; then its residual
# correction, derived on the validation split and grafted onto the ONNX model.


rule export_onnx:
    input:
        selection=rules.select_model.output.best,
        models=lambda w: PLAN.family_models(w.family, promoted).values(),
        clouds=PLAN.split_files()["val"],
    output:
        onnx=spec.NETWORK_ONNX,
        check=spec.ONNX_CHECK,
    wildcard_constraints:
        family="|".join(PLAN.families),
    params:
        models=lambda w: named(PLAN.family_models(w.family, promoted)),
        jets=config["export"]["check_jets"],
        tolerance=config["export"]["tolerance"],
    log:
        "results/logs/export_onnx/{family}.log",
    benchmark:
        "results/benchmarks/export_onnx/{family}.tsv"
    resources:
        **sized("export_onnx"),
    conda:
        ENV
    shell:
        "gnnjec export-onnx --selection {input.selection} --family {wildcards.family} --models {params.models}"
        " --clouds {input.clouds} --onnx {output.onnx} --check {output.check} --jets {params.jets}"
        " --tolerance {params.tolerance} > {log} 2>&1"


rule residual_correction:
    input:
        network=spec.NETWORK_ONNX,
        clouds=PLAN.split_files()["val"],
    output:
        onnx=spec.ONNX,
        table=spec.RESIDUAL,
    wildcard_constraints:
        family="|".join(PLAN.families),
    params:
        config=json_arg(config["residual"]),
    threads: 2
    log:
        "results/logs/residual_correction/{family}.log",
    benchmark:
        "results/benchmarks/residual_correction/{family}.tsv"
    resources:
        **sized("residual_correction"),
    conda:
        ENV
    shell:
        "gnnjec residual-correction --network {input.network} --clouds {input.clouds} --config {params.config:q}"
        " --onnx {output.onnx} --table {output.table} --threads {threads} > {log} 2>&1"
