# Stage tokenize: a task's data as model features, once per (base tokenizer, task); every fine-tune
# and LogME score of the base and of its merged PTMs reuses them (ptmbench.stages.tokenize).


rule tokenize:
    """A task's data as model features with the base model's tokenizer, shared by every PTM of that base."""
    input:
        unpack(inputs_of("tokenize")),
    output:
        directory(paths.TOKENIZED_DIR),
    log:
        paths.log_file("tokenize"),
    benchmark:
        paths.benchmark_file("tokenize")
    conda:
        "../../envs/ptmbench.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        hp=lambda wc: hyperparameters(wc.base, wc.task),
    script:
        "../scripts/tokenize.py"
