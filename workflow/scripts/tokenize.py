from ptmbench.runtime.job import job
from ptmbench.stages import tokenize

with job(snakemake):
    tokenize.tokenize(
        snakemake.input.model, snakemake.wildcards.task, snakemake.input.data,
        snakemake.output[0], snakemake.params.hp,
    )
