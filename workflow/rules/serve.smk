# Serve: a Triton Inference Server model repository of the exported networks (one model per family),
# which `gnnjec serve` (KServe v2 / Open Inference Protocol on ONNX Runtime) and Triton both load.


rule triton_model:
    input:
        onnx=spec.ONNX,
    output:
        config=spec.TRITON_CONFIG,
        onnx=spec.TRITON_ONNX,
    wildcard_constraints:
        family="|".join(PLAN.families),
    params:
        model_dir=lambda w, output: os.path.dirname(output.config),
        max_batch_size=config["serving"]["max_batch_size"],
        delay=config["serving"]["max_queue_delay_us"],
    log:
        "results/logs/triton_model/{family}.log",
    benchmark:
        "results/benchmarks/triton_model/{family}.tsv"
    conda:
        ENV
    shell:
        "gnnjec triton-model --onnx {input.onnx} --name {wildcards.family} --output-dir {params.model_dir}"
        " --max-batch-size {params.max_batch_size} --max-queue-delay-us {params.delay} > {log} 2>&1"
