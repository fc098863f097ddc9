# Export: each model family's best point to ONNX, checked against torch on held-out jets.


rule export_onnx:
    input:
        selection=rules.select_model.output.best,
        models=lambda w: PLAN.family_models(w.family, promoted).values(),
        clouds=PLAN.split_files()["val"],
    output:
        onnx=spec.ONNX,
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
