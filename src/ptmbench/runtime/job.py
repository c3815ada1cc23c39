"""The job wrapper every workflow script runs in: log file, threads, leftover temporaries, input
checks, the GPU device slot."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path

from ptmbench.core import tasks
from ptmbench.io.integrity import check_inputs
from ptmbench.io.progress import quiet_bars
from ptmbench.io.provenance import remove_temps
from ptmbench.runtime.devices import job_slot

log = logging.getLogger("ptmbench")


@contextlib.contextmanager
def job(smk):
    """Run a Snakemake script body: log to ``log[0]``, use the job's threads, time it.

    Python ``logging`` (ptmbench, transformers, datasets) and stdout/stderr go to the job's log
    file; an exception is written there with its traceback and re-raised, so Snakemake marks the
    job failed and removes its outputs. Before the body runs, the temporaries that killed earlier
    attempts left beside the outputs are removed, and every input is checked whole
    (:mod:`ptmbench.io.integrity`): a corrupt input fails the job at once, naming the file and the fix.
    A GPU job (``gpu`` resource >= 1) then claims a device slot (:mod:`ptmbench.runtime.devices`) for its
    whole life and sees only that GPU (``CUDA_VISIBLE_DEVICES``); without a GPU it runs on the CPU.
    """
    tasks.configure(smk.config)  # the custom tasks of the run's config are known to the script
    log_path = Path(smk.log[0]) if smk.log else None
    stream = open(log_path, "a", buffering=1) if log_path else sys.stderr  # noqa: SIM115
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = stream
    if log_path:  # a log file: progress lines at a steady rate (ptmbench.io.progress), not a tqdm bar per update
        quiet_bars()
    start = time.perf_counter()
    try:
        threads = int(getattr(smk, "threads", 1) or 1)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        # the job's threads for torch (intra-op) and BLAS, read when they are first imported; jobs
        # that need no torch (data, export, report) do not pay for importing it here
        os.environ["OMP_NUM_THREADS"] = str(threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        log.info("rule %s, wildcards %s, threads %d", smk.rule, dict(smk.wildcards.items()), threads)
        for out in smk.output:
            for tmp in remove_temps(out):
                log.info("removed %s, left by an earlier attempt that was killed", tmp)
        check_inputs(smk.input)
        with job_slot(smk):  # before the body imports torch / initialises CUDA
            yield
        log.info("done in %.1f s", time.perf_counter() - start)
    except BaseException:
        log.exception("failed after %.1f s", time.perf_counter() - start)
        raise
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        root.removeHandler(handler)
        if log_path:
            stream.close()
