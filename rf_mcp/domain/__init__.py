"""Domain layer: calibration, evaluation, search patterns and the guardrails that every front end shares."""
