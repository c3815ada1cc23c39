from ptmbench.runtime.job import job
from ptmbench.stages import compare

with job(snakemake):
    compare.compare(
        run_performance_csv=snakemake.input.performance,
        run_logme_csv=snakemake.input.logme,
        published_performance_csv=snakemake.input.published_performance,
        published_logme_csv=snakemake.input.published_logme,
        models=snakemake.params.models,
        unseen=snakemake.params.unseen,
        export_names=snakemake.params.export_names,
        seeds=snakemake.params.seeds,
        pairs_csv=snakemake.output.pairs,
        tasks_csv=snakemake.output.tasks,
        plots_dir=snakemake.output.plots,
        html_file=snakemake.output.html,
        summary_txt=snakemake.output.summary,
    )
