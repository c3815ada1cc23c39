# Stage export: the published ptm_model_bench layout and the tidy tables (CSV and Parquet).
# Graph files are hard-linked into the export (copied where linking fails); see docs/export.md.


EXPORT_INPUTS = ZOO.export_inputs()


rule export:
    """The published ptm_model_bench layout and the tidy tables (CSV and Parquet)."""
    input:
        finetune=EXPORT_INPUTS["finetune"],
        finetune_seeds=EXPORT_INPUTS["finetune_seeds"],  # finetune.seeds after the first: tables only
        logme=EXPORT_INPUTS["logme"],
        early_stop=EXPORT_INPUTS["early_stop"],  # the fine-tuning proxy: rows of the estimators table
        graphs=EXPORT_INPUTS["graphs"],
    output:
        bench=directory(paths.EXPORT_DIR),
        performance=report(paths.PERFORMANCE_CSV, caption="../report/performance.rst", category="Tables"),
        logme=report(paths.LOGME_CSV, caption="../report/logme.rst", category="Tables"),
        estimators=report(paths.ESTIMATORS_CSV, caption="../report/estimators.rst", category="Tables"),
        sweep=paths.SWEEP_CSV,  # config transferability.sweep (header only when it is off)
        # the same tables as Parquet (types and provenance kept); written beside the CSVs
        performance_parquet=paths.PERFORMANCE_PARQUET,
        logme_parquet=paths.LOGME_PARQUET,
        estimators_parquet=paths.ESTIMATORS_PARQUET,
        sweep_parquet=paths.SWEEP_PARQUET,
    log:
        paths.log_file("export"),
    benchmark:
        paths.benchmark_file("export")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        models=MODELS,
        unseen=UNSEEN,
        tasks=TASKS,
        feature_length=config["graph"]["feature_length"],
    script:
        "../scripts/export.py"
