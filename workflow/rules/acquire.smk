# Stage acquire: base models and datasets, from the source each config entry names
# (hub/url need the network; path, package, tiny and demo work offline).
# Every model is written in AutoModel layout (config.json, model.safetensors, tokenizer files),
# so later stages never depend on how a checkpoint was published.


rule acquire_model:
    output:
        directory("resources/models/{base}"),
    log:
        "logs/acquire_model/{base}.log",
    benchmark:
        "benchmarks/acquire_model/{base}.tsv"
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=lambda wc, attempt: (12000 if naming.is_large(wc.base) else 6000) * attempt,
        runtime=30,
    params:
        spec=lambda wc: model_spec(wc.base),
    script:
        "../scripts/acquire.py"


rule acquire_glue:
    output:
        directory("resources/data/glue/{glue_task}"),
    log:
        "logs/acquire_glue/{glue_task}.log",
    benchmark:
        "benchmarks/acquire_glue/{glue_task}.tsv"
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        spec=config["data"]["glue"],
    script:
        "../scripts/acquire.py"


rule acquire_custom:
    output:
        directory("resources/data/custom/{custom_task}"),
    log:
        "logs/acquire_custom/{custom_task}.log",
    benchmark:
        "benchmarks/acquire_custom/{custom_task}.tsv"
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/acquire.py"


rule acquire_squad:
    output:
        train="resources/data/squad_v2/train-v2.0.json",
        dev="resources/data/squad_v2/dev-v2.0.json",
    log:
        "logs/acquire_squad/squad_v2.log",
    benchmark:
        "benchmarks/acquire_squad/squad_v2.tsv"
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        spec=config["data"]["squad_v2"],
    script:
        "../scripts/acquire.py"
