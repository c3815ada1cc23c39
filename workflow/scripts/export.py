from ptmbench import export
from ptmbench.provenance import job

with job(snakemake):
    if snakemake.rule == "export":
        export.export(
            finetune=snakemake.input.finetune,
            logme=snakemake.input.logme,
            graphs=snakemake.input.graphs,
            models=snakemake.params.models,
            unseen=snakemake.params.unseen,
            tasks=snakemake.params.tasks,
            out_dir=snakemake.output.bench,
            performance_csv=snakemake.output.performance,
            logme_csv=snakemake.output.logme,
            feature_length=snakemake.params.feature_length,
        )
    else:
        export.report(
            performance_csv=snakemake.input.performance,
            logme_csv=snakemake.input.logme,
            correlations_csv=snakemake.output.correlations,
            plots_dir=snakemake.output.plots,
            summary_txt=snakemake.output.summary,
        )
