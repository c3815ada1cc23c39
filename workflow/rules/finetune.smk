# Stage finetune: tokenise once per (base tokenizer, task), fine-tune every base model on every
# task (weights kept: merge needs them) and every merged PTM on every task (metrics only).
# A retry (Snakemake --retries / attempt) halves the per-device batch and doubles gradient
# accumulation (resource batch_split), so a CUDA out-of-memory retry trains the same science.


rule tokenize:
    input:
        model=lambda wc: f"resources/models/{wc.base}",
        data=lambda wc: task_data(wc.task),
    output:
        directory("results/tokenized/{base}/{task}"),
    params:
        hp=lambda wc: hyperparameters(wc.base, wc.task),
    log:
        "logs/tokenize/{base}/{task}.log",
    benchmark:
        "benchmarks/tokenize/{base}/{task}.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/ptmbench.yaml"
    script:
        "../scripts/finetune.py"


rule finetune_base:
    input:
        model=lambda wc: f"resources/models/{wc.base}",
        data="results/tokenized/{base}/{task}",
    output:
        metrics="results/finetune/{base}/{task}/metrics.json",
        model=directory("results/finetune/{base}/{task}/model"),
    params:
        ptm=lambda wc: wc.base,
        hp=lambda wc: hyperparameters(wc.base, wc.task),
    log:
        "logs/finetune_base/{base}/{task}.log",
    benchmark:
        "benchmarks/finetune_base/{base}/{task}.tsv"
    threads: 2
    resources:
        mem_mb=mem_mb(16000, 32000),
        runtime=runtime(480, 1440),
        batch_split=lambda wc, attempt: 2 ** (attempt - 1),
    conda:
        "../../envs/ptmbench.yaml"
    script:
        "../scripts/finetune.py"


rule finetune_merged:
    input:
        model="results/merged/{base}/{pair}_{ratio}",
        data="results/tokenized/{base}/{task}",
    output:
        metrics="results/finetune/{base}_{pair}_{ratio}/{task}/metrics.json",
    params:
        ptm=lambda wc: f"{wc.base}_{wc.pair}_{wc.ratio}",
        hp=lambda wc: hyperparameters(wc.base, wc.task),
    log:
        "logs/finetune_merged/{base}_{pair}_{ratio}/{task}.log",
    benchmark:
        "benchmarks/finetune_merged/{base}_{pair}_{ratio}/{task}.tsv"
    threads: 2
    resources:
        mem_mb=mem_mb(16000, 32000),
        runtime=runtime(480, 1440),
        batch_split=lambda wc, attempt: 2 ** (attempt - 1),
    conda:
        "../../envs/ptmbench.yaml"
    script:
        "../scripts/finetune.py"
