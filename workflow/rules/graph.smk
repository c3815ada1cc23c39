# Stage graph: the attention graph and per-head eigenvalue features (QK^T, VO) of every PTM,
# base and merged, as the published dill file.


rule graph:
    input:
        lambda wc: ptm_dir(wc.ptm),
    output:
        "results/graphs/{ptm}.dill",
    params:
        feature_length=config["graph"]["feature_length"],
    log:
        "logs/graph/{ptm}.log",
    benchmark:
        "benchmarks/graph/{ptm}.tsv"
    resources:
        mem_mb=mem_mb(4000, 8000),
        runtime=30,
    conda:
        "../../envs/ptmbench.yaml"
    script:
        "../scripts/graph.py"
