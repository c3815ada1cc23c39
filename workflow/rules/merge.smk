# Stage merge: for every base model, task pair (fixed order) and ratio, interpolate the two
# fine-tuned encoders (published method: `.weight` tensors, everything else from the base),
# streaming safetensors tensor by tensor. merge.keep=false makes merged weights temp().


rule merge:
    input:
        base="resources/models/{base}",
        a=lambda wc: f"results/finetune/{wc.base}/{naming.parse_pair(wc.pair)[0]}/model",
        b=lambda wc: f"results/finetune/{wc.base}/{naming.parse_pair(wc.pair)[1]}/model",
    output:
        merged_output("results/merged/{base}/{pair}_{ratio}"),
    log:
        "logs/merge/{base}/{pair}_{ratio}.log",
    benchmark:
        "benchmarks/merge/{base}/{pair}_{ratio}.tsv"
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
