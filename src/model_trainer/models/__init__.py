"""Estimators and their registry, preprocessing, metrics and ensembles."""
