"""Experiment runners: `python -m experiments.<name> [--smoke] ...`."""
