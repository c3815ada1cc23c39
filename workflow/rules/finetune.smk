# Stage finetune: tokenise once per (base tokenizer, task), fine-tune every base model on every
# task (weights kept: merge needs them) and every merged PTM on every task (metrics only).
#
# Out-of-memory: a CUDA OOM is retried inside the job (ptmbench.finetune.retry_out_of_memory): the
# per-device batch is halved and gradient accumulation doubled, so the effective batch, the
# length-grouped batches and the mean-loss gradient stay the same and the retry trains the same
# science. The rules have no `retries:`: a corrupt input or bad data fails once, with a message naming
# the file. On a cluster the profile's `retries` resubmits jobs lost to a node failure or a time
# limit, with attempt + 1: more memory and runtime, and batch_split = 2**(attempt-1) as the start.
# Each fine-tune asks for one GPU (`gpu=1`; the job uses CUDA whenever it sees one, else the CPU).
# `gpu` is a local-scoped resource (common.smk): on one machine profiles/default limits it so GPU jobs
# do not overlap; on a cluster every job gets its own GPU (profiles/slurm adds partition/model).

# Hours on one GPU for a base-size model (x3 for 'large'), with a margin: the task's finetune_hours
# (ptmbench.tasks). Runtime grows by half on each retry.


rule tokenize:
    input:
        model="resources/models/{base}",
        data=lambda wc: task_data(wc.task),
    output:
        directory("results/tokenized/{base}/{task}"),
    log:
        "logs/tokenize/{base}/{task}.log",
    benchmark:
        "benchmarks/tokenize/{base}/{task}.tsv"
    conda:
        "../../envs/ptmbench.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        hp=lambda wc: hyperparameters(wc.base, wc.task),
    script:
        "../scripts/finetune.py"


rule finetune_base:
    input:
        model="resources/models/{base}",
        data="results/tokenized/{base}/{task}",
    output:
        metrics="results/finetune/{base}/{task}/metrics.json",
        model=directory("results/finetune/{base}/{task}/model"),
    log:
        "logs/finetune_base/{base}/{task}.log",
    benchmark:
        "benchmarks/finetune_base/{base}/{task}.tsv"
    conda:
        "../../envs/ptmbench.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(16000, 32000),
        runtime=lambda wc, attempt: int(
            60
            * registry.get(wc.task).finetune_hours
            * (3 if naming.is_large(wc.base) else 1)
            * (1 + 0.5 * (attempt - 1))
        ),
        batch_split=lambda wc, attempt: 2 ** (attempt - 1),
        gpu=1,
    params:
        ptm="{base}",
        hp=lambda wc: hyperparameters(wc.base, wc.task),
    script:
        "../scripts/finetune.py"


rule finetune_merged:
    input:
        model="results/merged/{base}/{pair}_{ratio}",
        data="results/tokenized/{base}/{task}",
    output:
        metrics="results/finetune/{base}_{pair}_{ratio}/{task}/metrics.json",
    log:
        "logs/finetune_merged/{base}_{pair}_{ratio}/{task}.log",
    benchmark:
        "benchmarks/finetune_merged/{base}_{pair}_{ratio}/{task}.tsv"
    conda:
        "../../envs/ptmbench.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(16000, 32000),
        runtime=lambda wc, attempt: int(
            60
            * registry.get(wc.task).finetune_hours
            * (3 if naming.is_large(wc.base) else 1)
            * (1 + 0.5 * (attempt - 1))
        ),
        batch_split=lambda wc, attempt: 2 ** (attempt - 1),
        gpu=1,
    params:
        ptm="{base}_{pair}_{ratio}",
        hp=lambda wc: hyperparameters(wc.base, wc.task),
    script:
        "../scripts/finetune.py"
