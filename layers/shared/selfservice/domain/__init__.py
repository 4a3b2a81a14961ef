"""Pure domain: models and rules. Imports nothing from AWS."""
