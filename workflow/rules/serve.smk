# Serve: a Triton Inference Server model repository of the exported networks (one model per family),
# which `gnnjec serve` (KServe v2 / Open Inference Protocol on ONNX Runtime) and Triton both load.


rule triton_model:
    input:
        onnx="results/export/{family}/model.onnx",
    output:
        config="results/triton/{family}/config.pbtxt",
        onnx="results/triton/{family}/1/model.onnx",
    wildcard_constraints:
        family="|".join(FAMILIES),
    params:
        max_batch_size=config["serving"]["max_batch_size"],
        delay=config["serving"]["max_queue_delay_us"],
    log:
        "results/logs/triton_model/{family}.log",
    benchmark:
        "results/benchmarks/triton_model/{family}.tsv"
    conda:
        ENV
    shell:
        "{GNNJEC} triton --onnx {input.onnx} --name {wildcards.family} --output-dir results/triton/{wildcards.family}"
        " --max-batch-size {params.max_batch_size} --max-queue-delay-us {params.delay} > {log} 2>&1"


TRITON_MODELS = [f"results/triton/{family}/config.pbtxt" for family in FAMILIES]
