from ptmbench.io.provenance import job
from ptmbench.stages import acquire

with job(snakemake):
    if snakemake.rule == "acquire_model":
        acquire.acquire_model(snakemake.wildcards.base, snakemake.params.spec, snakemake.output[0])
    elif snakemake.rule == "acquire_glue":
        acquire.acquire_glue(snakemake.wildcards.glue_task, snakemake.params.spec, snakemake.output[0])
    elif snakemake.rule == "acquire_custom":
        acquire.acquire_custom(snakemake.wildcards.custom_task, snakemake.output[0])
    else:
        acquire.acquire_squad(snakemake.params.spec, snakemake.output.train, snakemake.output.dev)
