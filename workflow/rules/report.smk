# Stage report: LogME vs fine-tuned performance from the export's tables: rank correlations, plots
# and a text summary (ptmbench.report); with the tables, all in `snakemake --report`.


report: "../report/workflow.rst"


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
        "../scripts/report.py"
