from ptmbench.runtime.job import job
from ptmbench.stages import report

with job(snakemake):
    report.report(
        performance_csv=snakemake.input.performance,
        logme_csv=snakemake.input.logme,
        correlations_csv=snakemake.output.correlations,
        plots_dir=snakemake.output.plots,
        summary_txt=snakemake.output.summary,
        estimators_csv=snakemake.input.estimators,
        leaderboard_csv=snakemake.output.leaderboard,
        judging_csv=snakemake.output.judging,
        noise_csv=snakemake.output.noise,
        html_dir=snakemake.output.html,
        data=snakemake.params.data,
        demo_data=snakemake.params.demo_data,
        extra_summaries=snakemake.input.summaries,
        judging_config=snakemake.params.judging,
        sweep_csv=snakemake.input.sweep,
    )
