"""Estimators: LogME and the other transferability estimators (pure maths on features), and feature extraction."""
