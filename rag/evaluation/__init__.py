"""Evaluating (`rag eval`): QA sets, metrics, runs and their reports."""
