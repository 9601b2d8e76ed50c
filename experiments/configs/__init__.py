"""Frozen experiment configurations: the seeds' full settings and tiny --smoke ones."""
