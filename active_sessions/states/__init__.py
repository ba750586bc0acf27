"""Reflex states, one per concern, all derived from `BaseState`."""
