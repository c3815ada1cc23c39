from ptmbench.runtime.job import job
from ptmbench.stages import published

with job(snakemake):
    published.publish(
        spec=snakemake.params.source,
        performance_csv=snakemake.output.performance,
        logme_csv=snakemake.output.logme,
        judging_csv=snakemake.output.judging,
        leaderboard_csv=snakemake.output.leaderboard,
        summary_txt=snakemake.output.summary,
        html_file=snakemake.output.html,
        param_counts=snakemake.params.param_counts,
        judging_config=snakemake.params.judging,
    )
