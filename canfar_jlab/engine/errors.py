"""Errors the engine answers with: one text/plain line and a status code, as Skaha does."""

from __future__ import annotations


class SkahaError(Exception):
    """A client-visible failure: HTTP `status` with body `message` plus a newline."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> SkahaError:
    return SkahaError(400, message)


def not_found(message: str) -> SkahaError:
    return SkahaError(404, message)
