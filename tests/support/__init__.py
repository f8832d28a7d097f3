"""Helpers shared by every test package: run specs and deadline-bound waiting."""
