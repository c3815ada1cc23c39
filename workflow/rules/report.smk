# Stage report: transferability estimators vs fine-tuned performance from the export's tables: rank
# correlations, the estimator leaderboard, the seed noise ceiling, plots, a text summary and the
# tables as HTML pages (ptmbench.stages.report, ptmbench.evaluation.judging); all in `snakemake --report`, the tables inline.

from ptmbench.stages import report as report_lib


report: "../report/workflow.rst"


rule report:
    """Estimators judged against fine-tuning: correlations, leaderboard, noise ceiling, plots, summary."""
    input:
        performance=paths.PERFORMANCE_CSV,
        logme=paths.LOGME_CSV,
        estimators=paths.ESTIMATORS_CSV,
        sweep=paths.SWEEP_CSV,  # config transferability.sweep: plots sweep_{task}.png (none when off)
        data=ZOO.report_data(),
        summaries=paths.REPORT_SUMMARIES,  # the published judging and the comparison, appended to the summary
    output:
        correlations=report(
            paths.CORRELATIONS_CSV,
            caption="../report/correlations.rst",
            category="4. LogME vs fine-tuning (CSV)",
        ),
        leaderboard=report(
            paths.LEADERBOARD_CSV,
            caption="../report/leaderboard.rst",
            category="3. Estimators (CSV)",
        ),
        judging=report(paths.JUDGING_CSV, caption="../report/judging.rst", category="3. Estimators (CSV)"),
        noise=report(paths.NOISE_CSV, caption="../report/noise.rst", category="3. Estimators (CSV)"),
        html=report(
            directory(paths.REPORT_HTML_DIR),
            patterns=["{name}.html"],
            caption="../report/html.rst",
            category="1. Tables",
        ),
        plots=report(
            directory(paths.PLOTS_DIR),
            patterns=["{name}.png"],
            caption="../report/plots.rst",
            category="2. Plots",
        ),
        summary=report(
            paths.SUMMARY_TXT,
            caption="../report/summary.rst",
            category="4. LogME vs fine-tuning (CSV)",
        ),
    log:
        paths.log_file("report"),
    benchmark:
        paths.benchmark_file("report")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        demo_data=report_lib.demo_sources(config),
        data={t: paths.task_data(t) for t in TASKS},
    script:
        "../scripts/report.py"
