"""Shared by every stage: user-facing words (i18n), number formatting, the metric vocabulary."""
