"""Files: atomic writes, provenance, checksums, checkpoint reading and input integrity checks."""
