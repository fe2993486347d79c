"""Closed-form expected errors and bounds for model collapse, in plain numpy."""
