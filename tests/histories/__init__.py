"""Saved workflow histories that the replay tests run against the current code."""
