from ptmbench.runtime.job import job
from ptmbench.stages import merge

with job(snakemake):
    merge.merge_models(
        base_dir=snakemake.input.base,
        a_dir=snakemake.input.a,
        b_dir=snakemake.input.b,
        ratio=float(snakemake.wildcards.ratio),
        out_dir=snakemake.output[0],
        method=snakemake.params.method,
        density=snakemake.params.density,
    )
