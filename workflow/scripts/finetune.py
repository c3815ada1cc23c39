from ptmbench.core.paths import Zoo
from ptmbench.runtime.job import job
from ptmbench.stages import finetune

with job(snakemake):
    finetune.finetune(
        ptm=snakemake.params.ptm,
        model_dir=snakemake.input.model,
        tokenized_dir=snakemake.input.data,
        task=snakemake.wildcards.task,
        hp=snakemake.params.hp,
        metrics_path=snakemake.output.metrics,
        save_dir=snakemake.output.get("model"),
        batch_split=snakemake.resources.batch_split,
        base=Zoo.from_config(snakemake.config).base_of(snakemake.params.ptm),
        # from the config, not a rule param: tracking changes no result, so switching it on must not
        # rerun the finished fine-tunes (Snakemake reruns a job whose params changed)
        report_to=snakemake.config["finetune"].get("report_to", "none"),
    )
