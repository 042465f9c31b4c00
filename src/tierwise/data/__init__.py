"""Data in: the embedded store, compute engines, imports, sources where the data lives, and the
canonical tables a run reads."""
