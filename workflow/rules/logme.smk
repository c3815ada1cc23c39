# Stage logme: LogME transferability of every PTM on every classification and regression task.
# Granularity: one job per (PTM, task). Feature extraction is the expensive part and is per task
# anyway (each task has its own inputs); per-task jobs let a cluster spread 552 x 9 short GPU jobs,
# a failure costs one task, and adding a task reruns nothing else. Loading the PTM again per task
# costs seconds against minutes of feature extraction (MNLI: 393k examples).
# The same job scores the other transferability estimators (config transferability) on the same
# features: one forward pass per PTM and task. A change of their parameters reruns it (params).
# Output: results/logme/{ptm}/{task}.json with score (LogME), n, d, num_targets, time_s,
# feature_time_s, logme_time_s, max_examples, estimators, provenance (ptmbench.stages.logme.score_ptm).


rule logme:
    """LogME and the other transferability estimators of one PTM on one task, from one feature pass."""
    input:
        unpack(inputs_of("logme")),
    output:
        paths.LOGME_JSON,
    log:
        paths.log_file("logme"),
    benchmark:
        paths.benchmark_file("logme")
    conda:
        "../../envs/ptmbench.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(16000, 32000),
        runtime=runtime(120, 360),
        gpu=1,  # feature extraction (see finetune.smk on the `gpu` resource)
    params:
        base=lambda wc: base_of(wc.ptm),
        max_examples=config["logme"]["max_examples"],
        batch_size=config["logme"]["batch_size"],
        precision=config["logme"]["precision"],
        transferability=config["transferability"],
    script:
        "../scripts/logme.py"
