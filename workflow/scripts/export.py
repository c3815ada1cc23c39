from ptmbench.runtime.job import job
from ptmbench.stages import export

with job(snakemake):
    export.export(
        finetune=snakemake.input.finetune,
        finetune_seeds=snakemake.input.finetune_seeds,
        logme=snakemake.input.logme,
        early_stop=snakemake.input.early_stop,
        graphs=snakemake.input.graphs,
        models=snakemake.params.models,
        unseen=snakemake.params.unseen,
        export_names=snakemake.params.export_names,
        tasks=snakemake.params.tasks,
        out_dir=snakemake.output.bench,
        performance_csv=snakemake.output.performance,
        logme_csv=snakemake.output.logme,
        estimators_csv=snakemake.output.estimators,
        sweep_csv=snakemake.output.sweep,
        feature_length=snakemake.params.feature_length,
    )
