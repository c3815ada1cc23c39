# Stage report: LogME vs fine-tuned performance from the export's tables: rank correlations, plots
# and a text summary (ptmbench.report); with the tables, all in `snakemake --report`.


report: "../report/workflow.rst"


rule report:
    input:
        performance=paths.PERFORMANCE_CSV,
        logme=paths.LOGME_CSV,
    output:
        correlations=report(
            paths.CORRELATIONS_CSV,
            caption="../report/correlations.rst",
            category="LogME vs fine-tuning",
        ),
        plots=report(
            directory(paths.PLOTS_DIR),
            patterns=["{name}.png"],
            caption="../report/plots.rst",
            category="Plots",
        ),
        summary=report(paths.SUMMARY_TXT, caption="../report/summary.rst", category="LogME vs fine-tuning"),
    log:
        paths.log_file("report"),
    benchmark:
        paths.benchmark_file("report")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/report.py"
