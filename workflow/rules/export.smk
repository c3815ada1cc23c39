# Stage export: the published ptm_model_bench layout, tidy tables, and the LogME-vs-fine-tune
# report (rank correlations and plots, also in `snakemake --report`).

EXPORT_OUTPUTS = [
    "results/ptm_model_bench",
    "results/tables/performance.csv",
    "results/tables/logme.csv",
    "results/report/correlations.csv",
]


rule export:
    input:
        finetune=[f"results/finetune/{p}/{t}/metrics.json" for p in PTMS for t in TASKS],
        logme=[f"results/logme/{p}/{t}.json" for p in PTMS for t in GLUE],
        graphs=[f"results/graphs/{p}.dill" for p in PTMS],
    output:
        bench=directory("results/ptm_model_bench"),
        performance="results/tables/performance.csv",
        logme="results/tables/logme.csv",
    params:
        models=MODELS,
        unseen=UNSEEN,
        tasks=TASKS,
    log:
        "logs/export/export.log",
    benchmark:
        "benchmarks/export/export.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/ptmbench.yaml"
    script:
        "../scripts/export.py"


rule report:
    input:
        performance="results/tables/performance.csv",
        logme="results/tables/logme.csv",
    output:
        correlations=report("results/report/correlations.csv", category="LogME vs fine-tuning"),
        plots=report(directory("results/report/plots"), patterns=["{name}.png"], category="Plots"),
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/ptmbench.yaml"
    script:
        "../scripts/export.py"
