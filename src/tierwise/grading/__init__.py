"""A grading run: metrics to tiers by a policy, hysteresis and overrides, explanations, what-if."""
