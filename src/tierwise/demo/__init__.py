"""`tierwise demo`: a workspace of synthetic Chinese B2B data, graded monthly."""

from tierwise.demo.build import build_demo

__all__ = ["build_demo"]
