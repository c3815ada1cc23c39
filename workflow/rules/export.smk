# Stage export: the published ptm_model_bench layout, tidy tables, and the LogME-vs-fine-tune
# report (rank correlations, plots and a text summary; all in `snakemake --report`).
# Graph files are hard-linked into the export (copied where linking fails); see docs/export.md.


report: "../report/workflow.rst"


EXPORT_OUTPUTS = [
    "results/ptm_model_bench",
    "results/tables/performance.csv",
    "results/tables/logme.csv",
    "results/report/correlations.csv",
    "results/report/summary.txt",
]


rule export:
    input:
        finetune=[f"results/finetune/{p}/{t}/metrics.json" for p in PTMS for t in TASKS],
        logme=[f"results/logme/{p}/{t}.json" for p in PTMS for t in LOGME_TASKS],
        graphs=[f"results/graphs/{p}.dill" for p in PTMS],
    output:
        bench=directory("results/ptm_model_bench"),
        performance=report(
            "results/tables/performance.csv", caption="../report/performance.rst", category="Tables"
        ),
        logme=report("results/tables/logme.csv", caption="../report/logme.rst", category="Tables"),
        # the same tables as Parquet (types and provenance kept); written beside the CSVs
        performance_parquet="results/tables/performance.parquet",
        logme_parquet="results/tables/logme.parquet",
    log:
        "logs/export/export.log",
    benchmark:
        "benchmarks/export/export.tsv"
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        models=MODELS,
        unseen=UNSEEN,
        tasks=TASKS,
        feature_length=config["graph"]["feature_length"],
    script:
        "../scripts/export.py"


rule report:
    input:
        performance="results/tables/performance.csv",
        logme="results/tables/logme.csv",
    output:
        correlations=report(
            "results/report/correlations.csv",
            caption="../report/correlations.rst",
            category="LogME vs fine-tuning",
        ),
        plots=report(
            directory("results/report/plots"),
            patterns=["{name}.png"],
            caption="../report/plots.rst",
            category="Plots",
        ),
        summary=report(
            "results/report/summary.txt", caption="../report/summary.rst", category="LogME vs fine-tuning"
        ),
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/export.py"
