"""canfar-jlab's one error vocabulary: every failure the core reports to a person.

Each error's message is one line for the user (never a traceback, never a credential). The
doors decide what an error means to their user from one table each: the server's HTTP status
(`server/base.py`, `HTTP_STATUS`) and the CLI's exit code (`cli/common.py`, `EXIT_CODES`); the
magic prints the line. Nothing here knows about HTTP or exit codes.

    CanfarError
    ├── InvalidInput            a value a person typed or sent cannot be used (also ValueError)
    ├── SkahaError              a session-service call failed (`status`: the upstream HTTP status)
    │   ├── InvalidRequest      refused as invalid (by us before sending, or by the service)
    │   ├── AuthError           the credential is missing, expired or refused
    │   │   └── CredentialsError    no usable credential could be found or read
    │   ├── NotFound
    │   ├── Unavailable         unreachable or failing (5xx), after any retries
    │   │   ├── UpstreamTimeout, BadReply, RedirectRefused, CreateOutcomeUnknown
    │   ├── ConnectionFailed    no session service could be set up at all
    │   └── VOSpaceError        a VOSpace call failed
    └── RunError                a run operation failed
        ├── RunNotFound
        │   └── NoMatch         nothing at all is called that (run, replica, session)
        ├── RunNameInUse
        ├── LaunchRefused       nothing was created; `problems` lists the cells at fault
        ├── NothingToRerun
        └── NothingToRenew

The programs that run inside a replica (`export_runner.py`, `kernel_runner.py`) keep their own
small errors: they are copied into replicas and import nothing of the package. The engine's
HTTP answers (`engine/errors.py`, `HTTPRefusal`) are the engine's wire, not this vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .export import ExportProblem


def one_line(text: str, limit: int = 500) -> str:
    """`text` folded to one printable line of at most `limit` characters."""
    line = " ".join(text.split())
    line = "".join(ch for ch in line if ch.isprintable())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class CanfarError(Exception):
    """A failure to report to a person; `message` is meant as one line."""

    code = "error"  # machine-readable kind, stable across releases

    def __init__(self, message: str) -> None:
        self.message = str(message)
        super().__init__(self.message)


class InvalidInput(CanfarError, ValueError):
    """A value a person typed or sent cannot be used (a flag, a sweep file, a parameter)."""

    code = "invalid_input"


# ------------------------------------------------------------------ the session service


class SkahaError(CanfarError):
    """A session-service call failed. `status` is the upstream HTTP status, when there was one."""

    code = "upstream_error"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(one_line(message))  # upstream text: folded, bounded
        self.status = status
        self.retry_after = retry_after


class InvalidRequest(SkahaError):
    """The request was refused as invalid (by us before sending, or by the service: 400)."""

    code = "invalid_request"


class AuthError(SkahaError):
    """The credential is missing, expired or refused (401/403), with how to renew it."""

    code = "canfar_auth"


class CredentialsError(AuthError):
    """No usable credential could be found or read."""

    code = "canfar_credentials"


class NotFound(SkahaError):
    code = "not_found"


class Unavailable(SkahaError):
    """The service could not be reached or failed (5xx), after any retries."""

    code = "upstream_unavailable"


class UpstreamTimeout(Unavailable):
    code = "upstream_timeout"


class BadReply(Unavailable):
    """The service answered with something we cannot read (malformed JSON, wrong shape)."""

    code = "upstream_bad_reply"


class RedirectRefused(Unavailable):
    """The service redirected to another origin; we do not carry credentials there."""

    code = "upstream_redirect"


class CreateOutcomeUnknown(Unavailable):
    """A create may or may not have happened (reply lost, timeout after sending, 5xx)."""

    code = "create_outcome_unknown"


class ConnectionFailed(SkahaError):
    """No session service could be set up (no credentials, the engine failed to start)."""

    code = "backend_unavailable"


class VOSpaceError(SkahaError):
    """A storage (VOSpace) call failed."""

    code = "storage_error"


# ------------------------------------------------------------------ runs


class RunError(CanfarError):
    """A run operation failed."""

    code = "run_error"


class RunNotFound(RunError):
    code = "run_not_found"


class NoMatch(RunNotFound):
    """Nothing is called that: no run, no replica of a run, no session."""


class RunNameInUse(RunError):
    code = "run_name_in_use"


class LaunchRefused(RunError):
    """Nothing was created. `problems` (export.ExportProblem) lists the cells that need a
    person at a screen."""

    code = "launch_refused"

    def __init__(
        self,
        message: str,
        problems: Sequence[ExportProblem] | None = None,
        headline: str | None = None,
    ) -> None:
        super().__init__(message)
        self.problems = list(problems or [])
        self.headline = headline  # "cannot run X as batch", when problems are listed

    def lines(self) -> list[str]:
        """The refusal for a terminal: one line, or a headline then each problem on its own
        line, in notebook order (warnings included, labelled)."""
        if len(self.problems) < 2 or not self.headline:
            return [str(self)]
        head = f"{self.headline} ({len(self.problems)} problems):"
        return [head, *(f"  {problem}" for problem in self.problems)]


class NothingToRerun(RunError):
    code = "nothing_to_rerun"


class NothingToRenew(RunError):
    code = "nothing_to_renew"
