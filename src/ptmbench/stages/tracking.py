"""Opt-in experiment tracking of the fine-tunes (config ``finetune.report_to``): TensorBoard, Weights &
Biases, MLflow, passed to the transformers ``Trainer`` (docs/finetune.md, "Watching the fine-tunes").

``none`` (the default) tracks nothing. ``tensorboard`` writes the event files of a fine-tune into a
``tensorboard/`` folder beside its ``metrics.json`` (:func:`tensorboard_dir`): ``tensorboard --logdir
results/finetune`` shows every run, named by its folder (PTM, task, extra seed). ``wandb`` and ``mlflow``
report to the service their own environment variables name (:data:`REPORTERS`); every run is named
:func:`run_name` (PTM, task and seed). Tracking never changes a result: the metrics, the weights and the
export are the same with any ``report_to``.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Reporter:
    """One tracking integration of the ``Trainer``: the package it needs and how the user configures it."""

    name: str
    package: str  # the import name the Trainer's callback needs
    install: str  # what to install
    env: str  # the environment variables that configure it (set by the user, never by ptm-bench)


REPORTERS = {r.name: r for r in (
    Reporter("tensorboard", "tensorboard", "tensorboard (a dependency of ptm-bench)",
             "none: the event files go to results/finetune/{ptm}/{task}/tensorboard/"),
    Reporter("wandb", "wandb", "pip install wandb, then `wandb login` (or WANDB_API_KEY)",
             "WANDB_PROJECT (default 'huggingface'), WANDB_ENTITY, WANDB_MODE=offline (no network: "
             "`wandb sync` later), WANDB_DIR, WANDB_API_KEY"),
    Reporter("mlflow", "mlflow", "pip install mlflow",
             "MLFLOW_TRACKING_URI (a server, or file:/path; default ./mlruns), MLFLOW_EXPERIMENT_NAME, "
             "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD"),
)}
TB_FOLDER = "tensorboard"


def reporters(report_to) -> list[str]:
    """The integrations of config value ``report_to`` (``none``, one name or a list of names), checked."""
    names = [report_to] if isinstance(report_to, str) or report_to is None else list(report_to)
    names = [n for n in names if n not in (None, "none")]
    unknown = [n for n in names if n not in REPORTERS]
    if unknown:
        raise ValueError(f"finetune.report_to: {unknown} unknown; use none or any of {sorted(REPORTERS)}")
    return list(dict.fromkeys(names))


def check_installed(names, find_spec=importlib.util.find_spec) -> None:
    """Fail before training when a chosen integration's package is missing, naming it and the fix."""
    for n in names:
        r = REPORTERS[n]
        if find_spec(r.package) is None:
            raise ModuleNotFoundError(
                f"finetune.report_to has {n!r} but package {r.package!r} is not installed in this job's "
                f"environment: {r.install}; or remove {n!r} from finetune.report_to")


def run_name(ptm: str, task: str, seed: int) -> str:
    """The run's name in every tracker: PTM, task and seed (``tiny-bert_sst2_stsb_0.5/stsb/seed0``)."""
    return f"{ptm}/{task}/seed{int(seed)}"


def tensorboard_dir(metrics_path) -> Path:
    """The event-file folder of a fine-tune: ``tensorboard/`` beside its ``metrics.json``."""
    return Path(metrics_path).parent / TB_FOLDER


def training_arguments(names, ptm: str, task: str, seed: int) -> dict:
    """The ``TrainingArguments`` keywords of tracking: ``report_to``, ``run_name`` and, with a tracker,
    the first step's loss logged too (a curve starts at step 1; then every ``logging_steps``)."""
    return {"report_to": list(names) or "none", "run_name": run_name(ptm, task, seed),
            "logging_first_step": bool(names)}


def start(names, metrics_path) -> Path | None:
    """Before a fine-tune trains: empty its TensorBoard folder (a rerun's curves replace the old run's;
    the folder is written live, so a long run can be watched) and return it, or None without tensorboard."""
    if "tensorboard" not in names:
        return None
    folder = tensorboard_dir(metrics_path)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def attach(trainer, folder: Path | None) -> None:
    """Point the ``Trainer``'s TensorBoard callback at ``folder`` (the Trainer's own default is inside
    its scratch output folder, which is deleted after the run)."""
    if folder is None:
        return
    from transformers.integrations import TensorBoardCallback

    found = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, TensorBoardCallback)]
    if not found:
        raise RuntimeError("report_to has tensorboard but the Trainer has no TensorBoardCallback")
    for cb in found:
        cb.logging_dir = str(folder)
