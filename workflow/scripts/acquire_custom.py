from ptmbench.runtime.job import job
from ptmbench.stages import acquire

with job(snakemake):
    acquire.acquire_custom(snakemake.wildcards.custom_task, snakemake.output[0])
