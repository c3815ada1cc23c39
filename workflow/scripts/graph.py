from ptmbench.runtime.job import job
from ptmbench.stages import graph

with job(snakemake):
    graph.write_graph(
        model_dir=snakemake.input.model,
        name=snakemake.params.name,
        out_path=snakemake.output[0],
        feature_length=snakemake.params.feature_length,
        optional=snakemake.params.optional,
    )
