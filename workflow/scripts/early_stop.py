from ptmbench.core.paths import Zoo
from ptmbench.runtime.job import job
from ptmbench.stages import early_stop

with job(snakemake):
    early_stop.early_stop(
        ptm=snakemake.params.ptm,
        model_dir=snakemake.input.model,
        tokenized_dir=snakemake.input.data,
        task=snakemake.wildcards.logme_task,
        hp=snakemake.params.hp,
        out_path=snakemake.output[0],
        steps=snakemake.params.steps,
        batch_split=snakemake.resources.batch_split,
        base=Zoo.from_config(snakemake.config).base_of(snakemake.params.ptm),
        report_to="none",  # a proxy's few steps: no experiment tracking
    )
