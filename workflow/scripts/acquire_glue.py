from ptmbench.runtime.job import job
from ptmbench.stages import acquire

with job(snakemake):
    acquire.acquire_glue(snakemake.wildcards.glue_task, snakemake.params.spec, snakemake.output[0])
