"""Settings: the workflow config, checked against its schema and against every registry it names."""
