# Export: each model family's best point to ONNX, checked against torch on held-out jets.


def family_models(family):
    """Per trained point of ``family``, its checkpoint."""
    return {p: m for p, m in trained("model.pt").items() if POINTS[p]["model"] == family}


rule export_onnx:
    input:
        selection=rules.select_model.output.best,
        models=lambda w: list(family_models(w.family).values()),
        clouds=SPLIT_FILES["val"],
    output:
        onnx="results/export/{family}/model.onnx",
        check="results/export/{family}/onnx_check.json",
    wildcard_constraints:
        family="|".join(FAMILIES),
    params:
        models=lambda w: [f"{p}={m}" for p, m in family_models(w.family).items()],
        jets=config["export"]["check_jets"],
        tolerance=config["export"]["tolerance"],
    log:
        "results/logs/export_onnx/{family}.log",
    benchmark:
        "results/benchmarks/export_onnx/{family}.tsv"
    resources:
        **sized(lambda w: SIZES.export(w.family)),
    conda:
        ENV
    shell:
        "{GNNJEC} export --selection {input.selection} --family {wildcards.family} --models {params.models}"
        " --clouds {input.clouds} --onnx {output.onnx} --check {output.check} --jets {params.jets}"
        " --tolerance {params.tolerance} > {log} 2>&1"


EXPORTED = {family: f"results/export/{family}/model.onnx" for family in FAMILIES}
