from ptmbench.runtime.job import job
from ptmbench.stages import acquire

with job(snakemake):
    acquire.acquire_model(snakemake.wildcards.base, snakemake.params.spec, snakemake.output[0])
