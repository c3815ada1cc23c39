# Stage graph: the attention graph and per-head eigenvalue features (QK^T, VO) of every PTM,
# base and merged, as the published dill file.


rule graph:
    """A PTM's attention graph and per-head eigenvalue features, as the published dill file."""
    input:
        unpack(inputs_of("graph")),
    output:
        paths.GRAPH_FILE,
    log:
        paths.log_file("graph"),
    benchmark:
        paths.benchmark_file("graph")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=mem_mb(4000, 8000),
        runtime=30,
    params:
        feature_length=config["graph"]["feature_length"],
    script:
        "../scripts/graph.py"
