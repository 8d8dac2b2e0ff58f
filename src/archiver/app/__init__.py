"""Composition root, service layer and entry points: the only package that reads the environment."""
