"""Outputs for people: the seed-001 grading table (Excel/CSV)."""
