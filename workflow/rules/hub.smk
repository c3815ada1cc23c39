# Stage hub: the export as a Hugging Face dataset repository in results/hub/: the dataset card
# (README.md: `configs:` for load_dataset, every column, the published layout, licenses, citation,
# provenance), the tables under data/ and the ptm_model_bench tree, hard-linked (ptmbench.stages.card).
# Upload: docs/export.md "Sharing on the Hugging Face Hub".

from ptmbench.stages import card


rule hub:
    input:
        unpack(inputs_of("hub")),
    output:
        hub=directory(paths.HUB_DIR),
    log:
        paths.log_file("hub"),
    benchmark:
        paths.benchmark_file("hub")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        tables=paths.HUB_TABLES,
        # read when the workflow is parsed: an edited CITATION.cff or config rewrites the card
        citation=card.read_citation(os.path.join(workflow.current_basedir, "..", "..", "CITATION.cff")),
        config=config,
    script:
        "../scripts/hub.py"
