from ptmbench.runtime.job import job
from ptmbench.stages import logme

with job(snakemake):
    logme.score_ptm(
        ptm=snakemake.wildcards.ptm,
        model_dir=snakemake.input.model,
        tokenized_dir=snakemake.input.data,
        task=snakemake.wildcards.logme_task,
        out_path=snakemake.output[0],
        max_examples=snakemake.params.max_examples,
        batch_size=snakemake.params.batch_size,
        base=snakemake.params.base,
        transferability=snakemake.params.transferability,
        precision=snakemake.params.precision,
    )
