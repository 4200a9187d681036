"""Errors the engine answers with: one text/plain line and a status code, as Skaha does."""

from __future__ import annotations


class HTTPRefusal(Exception):
    """The engine refuses a request: HTTP `status` with body `message` plus a newline, as Skaha
    answers (not the client-side `canfar_jlab.errors.SkahaError`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> HTTPRefusal:
    return HTTPRefusal(400, message)


def not_found(message: str) -> HTTPRefusal:
    return HTTPRefusal(404, message)
