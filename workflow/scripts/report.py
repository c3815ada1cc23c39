from ptmbench import report
from ptmbench.provenance import job

with job(snakemake):
    report.report(
        performance_csv=snakemake.input.performance,
        logme_csv=snakemake.input.logme,
        correlations_csv=snakemake.output.correlations,
        plots_dir=snakemake.output.plots,
        summary_txt=snakemake.output.summary,
    )
