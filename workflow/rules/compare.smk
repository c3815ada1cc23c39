# Stage compare: this run next to the published bench, per (PTM, task) in both: performance (the
# consumer metric) and LogME, per task the rankings' agreement, the differences and the seed-noise band
# (ptmbench.stages.compare). A run with no published PTM gets tables that say so.


rule compare:
    """This run's performance and LogME next to the published numbers, per PTM and per task."""
    input:
        unpack(inputs_of("compare")),
    output:
        pairs=report(
            paths.COMPARE_PAIRS_CSV,
            caption="../report/compare.rst",
            category="6. Comparison with the published bench",
        ),
        tasks=report(
            paths.COMPARE_TASKS_CSV,
            caption="../report/compare.rst",
            category="6. Comparison with the published bench",
        ),
        plots=report(
            directory(paths.COMPARE_PLOTS_DIR),
            patterns=["{name}.png"],
            caption="../report/compare.rst",
            category="6. Comparison with the published bench",
        ),
        html=report(
            paths.COMPARE_HTML,
            caption="../report/compare.rst",
            category="6. Comparison with the published bench",
        ),
        summary=paths.COMPARE_SUMMARY_TXT,
    log:
        paths.log_file("compare"),
    benchmark:
        paths.benchmark_file("compare")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        models=MODELS,
        unseen=UNSEEN,
        export_names=ZOO.export_names,  # unseen model -> its export_name (config)
        seeds=list(ZOO.seeds),
    script:
        "../scripts/compare.py"
