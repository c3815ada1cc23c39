"""Stages: one module per workflow stage (acquire, tokenize, finetune, early_stop, merge, graph, logme, export, published, compare, report, card)."""
