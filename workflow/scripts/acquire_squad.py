from ptmbench.runtime.job import job
from ptmbench.stages import acquire

with job(snakemake):
    acquire.acquire_squad(snakemake.params.spec, snakemake.output.train, snakemake.output.dev)
