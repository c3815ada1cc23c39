from ptmbench.runtime.job import job
from ptmbench.stages import card

with job(snakemake):
    card.write_hub(
        out_dir=snakemake.output.hub,
        bench=snakemake.input.bench,
        tables={name: snakemake.input[name] for name in snakemake.params.tables},
        citation=snakemake.params.citation,
        config=snakemake.params.config,
    )
