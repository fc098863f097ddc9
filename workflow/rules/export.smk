# Export: the selected network to ONNX, checked against torch on held-out jets.


rule export_onnx:
    input:
        selection=rules.select_model.output.best,
        models=lambda w: list(trained("model.pt").values()),
        clouds=SPLIT_FILES["val"],
    output:
        onnx="results/export/model.onnx",
        check="results/export/onnx_check.json",
    params:
        models=lambda w: [f"{p}={m}" for p, m in trained("model.pt").items()],
        jets=config["export"]["check_jets"],
        tolerance=config["export"]["tolerance"],
    log:
        "results/logs/export_onnx.log",
    benchmark:
        "results/benchmarks/export_onnx.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        ENV
    shell:
        "{GNNJEC} export --selection {input.selection} --models {params.models} --clouds {input.clouds}"
        " --onnx {output.onnx} --check {output.check} --jets {params.jets} --tolerance {params.tolerance}"
        " > {log} 2>&1"
