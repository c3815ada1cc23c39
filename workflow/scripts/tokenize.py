from ptmbench import tokenize
from ptmbench.provenance import job

with job(snakemake):
    tokenize.tokenize(
        snakemake.input.model, snakemake.wildcards.task, snakemake.input.data,
        snakemake.output[0], snakemake.params.hp,
    )
