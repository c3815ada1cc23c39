# Stage graph: the attention graph and per-head eigenvalue features (QK^T, VO) of every PTM,
# base and merged, as the published dill file (an unseen model without one: a "no graph" record).


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
        # the name stored in the file: the PTM's, or an unseen model's export_name (config)
        name=lambda wc: ZOO.export_name(wc.ptm),
        # an unseen model whose architecture has no graph writes a "no graph" record (docs/graph.md)
        optional=lambda wc: wc.ptm in UNSEEN,
    script:
        "../scripts/graph.py"
