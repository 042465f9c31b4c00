"""A grading run: metrics to tiers by a policy, hysteresis and overrides, the pipeline that
records it, explanations, what-if, backtest, calibration."""
