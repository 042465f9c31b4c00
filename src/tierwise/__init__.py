"""tierwise: customer tiering (客户分级) — metrics, declarative policies, explained grading runs."""

__version__ = "0.1.0"
