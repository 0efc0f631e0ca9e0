"""Recipes: versioned YAML that says how to run one model on one engine."""
