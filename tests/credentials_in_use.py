"""Credentials the server suite uses; tests/server/conftest.py checks none of them leaks."""

CREDENTIALS_IN_USE: set[str] = set()
