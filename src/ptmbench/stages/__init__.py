"""Stages: one module per workflow stage (acquire, tokenize, finetune, merge, graph, logme, export, report)."""
