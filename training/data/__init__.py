"""Datasets in the standard layout: synthetic features, procedures, renders, extraction
and annotations."""
