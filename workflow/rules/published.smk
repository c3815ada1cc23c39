# Stage published: the published ptm_model_bench (config key published: the shipped copy, a local folder
# or a download at a pinned commit), checked against its SHA-256 manifest, read into the export's tidy
# tables and LogME judged on it (ptmbench.stages.published). No model, no GPU: it runs in the demo.

import os

from ptmbench.stages import published as published_lib

PUBLISHED = published_lib.source_spec(config, os.path.join(workflow.current_basedir, "..", ".."))
PARAM_COUNTS = os.path.join(
    workflow.current_basedir, "..", "..", published_lib.SHIPPED_DIR, published_lib.PARAM_COUNTS
)


rule published:
    """The published ptm_model_bench read into tidy tables, and LogME judged on it (real data, no model)."""
    output:
        performance=paths.PUBLISHED_PERFORMANCE_CSV,
        logme=paths.PUBLISHED_LOGME_CSV,
        judging=report(
            paths.PUBLISHED_JUDGING_CSV,
            caption="../report/published.rst",
            category="5. Published bench (real data)",
        ),
        leaderboard=report(
            paths.PUBLISHED_LEADERBOARD_CSV,
            caption="../report/published.rst",
            category="5. Published bench (real data)",
        ),
        summary=paths.PUBLISHED_SUMMARY_TXT,
        html=report(
            paths.PUBLISHED_HTML,
            caption="../report/published.rst",
            category="5. Published bench (real data)",
        ),
    log:
        paths.log_file("published"),
    benchmark:
        paths.benchmark_file("published")
    conda:
        "../../envs/ptmbench.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        source=PUBLISHED,
        # the manifest's own checksum: new files behind the same config rerun this job
        manifest_sha256=published_lib.manifest_checksum(PUBLISHED),
        # the base models' parameter counts (param_count baseline); its checksum: a new table reruns this job
        param_counts=os.path.abspath(PARAM_COUNTS),
        param_counts_sha256=published_lib.sha256(PARAM_COUNTS),
        judging=config.get("judging", {}),
    script:
        "../scripts/published.py"
