"""One error vocabulary (canfar_jlab/errors.py) and the one table per door that reads it: the
server's HTTP statuses and the CLI's exit codes. Nothing else maps errors."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from canfar_jlab import errors
from canfar_jlab.cli.common import EXIT_CODES, exit_code
from canfar_jlab.server.base import HTTP_STATUS, http_error, http_status

PACKAGE = Path(__file__).parents[2] / "canfar_jlab"
KINDS = [k for _, k in inspect.getmembers(errors, inspect.isclass) if issubclass(k, Exception)]

EXPECTED = {  # class: (HTTP status, exit code)
    errors.InvalidInput: (400, 2),
    errors.InvalidRequest: (400, 1),
    errors.LaunchRefused: (400, 2),
    errors.NotFound: (404, 4),
    errors.RunNotFound: (404, 4),
    errors.NoMatch: (404, 4),
    errors.RunNameInUse: (409, 2),
    errors.NothingToRerun: (409, 1),
    errors.NothingToRenew: (409, 1),
    errors.RunError: (409, 1),
    errors.AuthError: (502, 3),  # the service refused our credential, not the Jupyter login
    errors.CredentialsError: (502, 3),
    errors.SkahaError: (502, 1),
    errors.ConnectionFailed: (502, 1),
    errors.VOSpaceError: (502, 1),
    errors.Unavailable: (502, 5),
    errors.BadReply: (502, 5),
    errors.RedirectRefused: (502, 5),
    errors.UpstreamTimeout: (504, 5),
    errors.CreateOutcomeUnknown: (504, 5),
    errors.CanfarError: (500, 1),
}


def test_every_error_is_in_one_hierarchy_and_has_an_expectation():
    assert all(issubclass(kind, errors.CanfarError) for kind in KINDS)
    assert set(KINDS) == set(EXPECTED)


@pytest.mark.parametrize("kind", list(EXPECTED), ids=lambda k: k.__name__)
def test_each_door_reads_its_one_table(kind):
    error = kind("something went wrong")
    assert (http_status(error), exit_code(error)) == EXPECTED[kind]
    assert http_error(error).log_message == "something went wrong"


def test_the_tables_name_only_the_vocabulary():
    assert set(HTTP_STATUS) <= set(KINDS) and set(EXIT_CODES) <= set(KINDS)


def test_no_handler_maps_an_error_to_a_status_by_itself():
    # `except SomeError: raise web.HTTPError(status, ...)` outside base.py would be a second table.
    found = []
    for path in sorted((PACKAGE / "server").glob("*.py")):
        if path.name == "base.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                names = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
                raised = [n for n in ast.walk(node) if isinstance(n, ast.Raise)]
                if names & {k.__name__ for k in KINDS} and any(
                    "HTTPError" in ast.unparse(r) for r in raised
                ):
                    found.append(f"{path.name}:{node.lineno}")
    assert not found, f"errors mapped outside server/base.py: {found}"
