"""Evaluation: fine-tune metrics, SQuAD v2 post-processing and judging estimators against fine-tuning."""
