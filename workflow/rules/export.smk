# Stage export: the published ptm_model_bench layout and the tidy tables (CSV and Parquet).
# Graph files are hard-linked into the export (copied where linking fails); see docs/export.md.


rule export:
    """The published ptm_model_bench layout and the tidy tables (CSV and Parquet)."""
    input:
        unpack(inputs_of("export")),
    output:
        bench=directory(paths.EXPORT_DIR),
        performance=report(
            paths.PERFORMANCE_CSV, caption="../report/performance.rst", category="7. Exported tables (CSV)"
        ),
        logme=report(paths.LOGME_CSV, caption="../report/logme.rst", category="7. Exported tables (CSV)"),
        estimators=report(
            paths.ESTIMATORS_CSV, caption="../report/estimators.rst", category="7. Exported tables (CSV)"
        ),
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
        export_names=ZOO.export_names,  # unseen model -> its export_name (config)
        tasks=TASKS,
        feature_length=config["graph"]["feature_length"],
    script:
        "../scripts/export.py"
