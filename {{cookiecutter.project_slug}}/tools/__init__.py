"""Helpers for working on this project locally: tests, the demo, template checks."""
