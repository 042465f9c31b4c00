"""Tier policies: the rule expression language and, later, policy files built on it."""
