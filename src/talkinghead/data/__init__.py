"""Datasets: the on-disk format, the synthetic corpus, and preparation of real videos."""
