# Stage finetune: fine-tune every base model on every task (weights kept: merge needs them) and
# every merged PTM on every task (metrics only), on the features of rule tokenize.
#
# Out-of-memory: a CUDA OOM is retried inside the job (ptmbench.stages.finetune.retry_out_of_memory): the
# per-device batch is halved and gradient accumulation doubled, so the effective batch, the
# length-grouped batches and the mean-loss gradient stay the same and the retry trains the same
# science. The rules have no `retries:`: a corrupt input or bad data fails once, with a message naming
# the file. On a cluster the profile's `retries` resubmits jobs lost to a node failure or a time
# limit, with attempt + 1: more memory and runtime, and batch_split = 2**(attempt-1) as the start.
# Each fine-tune asks for one GPU (`gpu=1`; the job uses CUDA whenever it sees one, else the CPU).
# `gpu` is a local-scoped resource (common.smk): on one machine it caps the GPU jobs in flight
# (profiles/default: 1; `--resources gpu=<GPUs x devices.jobs_per_gpu.base>`) and each job claims its
# own device slot when it starts (ptmbench.runtime.devices, in the job wrapper; docs/gpu.md); on a cluster
# every job gets its own GPU (profiles/slurm adds partition/model).

# Hours on one GPU for a base-size model (x3 for 'large'), with a margin: the task's finetune_hours
# (ptmbench.core.tasks). Runtime grows by half on each retry.


rule finetune_base:
    input:
        model=paths.MODEL_DIR,
        data=paths.TOKENIZED_DIR,
    output:
        metrics=paths.fill(paths.METRICS_JSON, ptm="{base}"),
        model=directory(paths.FINETUNED_MODEL_DIR),
    log:
        paths.log_file("finetune_base"),
    benchmark:
        paths.benchmark_file("finetune_base")
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
        model=paths.MERGED_DIR,
        data=paths.TOKENIZED_DIR,
    output:
        metrics=paths.fill(paths.METRICS_JSON, ptm=paths.MERGED_PTM),
    log:
        paths.log_file("finetune_merged"),
    benchmark:
        paths.benchmark_file("finetune_merged")
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
        ptm=paths.MERGED_PTM,
        hp=lambda wc: hyperparameters(wc.base, wc.task),
    script:
        "../scripts/finetune.py"


# Each further seed of finetune.seeds (the first, the primary seed, is rules finetune_base and
# finetune_merged above): every PTM, base or merged, is fine-tuned on every task again, metrics only
# (no weights: merges and the published export use the primary seed). results/tables/performance.csv
# has their rows (column seed).
rule finetune_seed:
    input:
        model=lambda wc: ptm_dir(wc.ptm),
        data=lambda wc: paths.tokenized_dir(ptm_of(wc.ptm).base, wc.task),
    output:
        metrics=paths.SEED_METRICS_JSON,
    log:
        paths.log_file("finetune_seed"),
    benchmark:
        paths.benchmark_file("finetune_seed")
    conda:
        "../../envs/ptmbench.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(16000, 32000),
        runtime=lambda wc, attempt: int(
            60
            * registry.get(wc.task).finetune_hours
            * (3 if naming.is_large(ptm_of(wc.ptm).base) else 1)
            * (1 + 0.5 * (attempt - 1))
        ),
        batch_split=lambda wc, attempt: 2 ** (attempt - 1),
        gpu=1,
    params:
        ptm="{ptm}",
        hp=lambda wc: seed_hyperparameters(ptm_of(wc.ptm).base, wc.task, wc.seed),
    script:
        "../scripts/finetune.py"
