# Stage merge: for every base model, task pair (fixed order) and ratio, interpolate the two
# fine-tuned encoders (published method: `.weight` tensors, everything else from the base),
# streaming safetensors tensor by tensor. merge.keep=false makes merged weights temp().


rule merge:
    """Two fine-tunes of one base model interpolated at one ratio (config merge.method)."""
    input:
        unpack(inputs_of("merge")),
    output:
        merged_output(paths.MERGED_DIR),
    log:
        paths.log_file("merge"),
    benchmark:
        paths.benchmark_file("merge")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=mem_mb(3000, 6000),
        runtime=30,
    params:
        method=config["merge"]["method"],
        density=config["merge"]["density"],
    script:
        "../scripts/merge.py"
