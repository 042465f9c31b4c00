"""The record: runs and their snapshots, history and overrides, the audit log, and the narrow
read interface reports use."""
