# Stage merge: for every base model, task pair (fixed order) and ratio, interpolate the two
# fine-tuned encoders (published method: `.weight` tensors, everything else from the base),
# streaming safetensors tensor by tensor. merge.keep=false makes merged weights temp().


rule merge:
    input:
        base=paths.MODEL_DIR,
        a=lambda wc: paths.finetuned_model_dir(wc.base, naming.parse_pair(wc.pair)[0]),
        b=lambda wc: paths.finetuned_model_dir(wc.base, naming.parse_pair(wc.pair)[1]),
    output:
        merged_output(paths.MERGED_DIR),
    log:
        paths.log_file("merge"),
    benchmark:
        paths.benchmark_file("merge")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=lambda wc, attempt: (6000 if naming.is_large(wc.base) else 3000) * attempt,
        runtime=30,
    params:
        method=config["merge"]["method"],
        density=config["merge"]["density"],
    script:
        "../scripts/merge.py"
