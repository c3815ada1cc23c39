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

# Runtime: common.smk's finetune_runtime (the task's finetune_hours, x3 for 'large', +50% per retry).


rule finetune_base:
    """A base model fine-tuned on one task (primary seed): its metrics and the weights merges need."""
    input:
        unpack(inputs_of("finetune_base")),
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
        runtime=finetune_runtime,
        batch_split=batch_split,
        gpu=1,
    params:
        ptm="{base}",
        hp=lambda wc: hyperparameters(wc.base, wc.task),
    script:
        "../scripts/finetune.py"


rule finetune_merged:
    """A merged PTM fine-tuned on one task (primary seed): metrics only."""
    input:
        unpack(inputs_of("finetune_merged")),
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
        runtime=finetune_runtime,
        batch_split=batch_split,
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
    """A PTM fine-tuned on one task with a further seed of finetune.seeds: metrics only."""
    input:
        unpack(inputs_of("finetune_seed")),
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
        runtime=finetune_runtime,
        batch_split=batch_split,
        gpu=1,
    params:
        ptm="{ptm}",
        hp=lambda wc: seed_hyperparameters(base_of(wc.ptm), wc.task, wc.seed),
    script:
        "../scripts/finetune.py"


# The fine-tuning proxy (an estimator, judged like the others; ptmbench.stages.early_stop): the recipe
# above stopped after early_stop.steps optimiser steps (default 500, as Bai et al. 2023), then the
# validation consumer metric. One GPU job per PTM and LogME task (its cost shows in the planner); no
# weights are kept. Off when early_stop.steps is null.
if ZOO.early_stop:

    rule early_stop:
        """A PTM fine-tuned for early_stop.steps steps on one task: the fine-tuning proxy's score."""
        input:
            unpack(inputs_of("early_stop")),
        output:
            paths.EARLY_STOP_JSON,
        log:
            paths.log_file("early_stop"),
        benchmark:
            paths.benchmark_file("early_stop")
        conda:
            "../../envs/ptmbench.yaml"
        threads: 1
        resources:
            mem_mb=mem_mb(16000, 32000),
            runtime=runtime(20, 60),  # 500 steps and one evaluation: minutes (the plan's GPU-hours)
            batch_split=batch_split,
            gpu=1,
        params:
            ptm="{ptm}",
            hp=lambda wc: hyperparameters(base_of(wc.ptm), wc.logme_task),
            steps=config["early_stop"]["steps"],
        script:
            "../scripts/early_stop.py"
