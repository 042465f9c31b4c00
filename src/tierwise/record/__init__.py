"""The record: runs, their history, overrides, snapshots."""
