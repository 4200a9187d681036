"""docs/openapi.yaml describes exactly the routes and verbs the handlers serve, and what they
answer matches its schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import yaml

from canfar_jlab.server.handlers import ROUTE_PREFIX, route_table

SPEC = yaml.safe_load((Path(__file__).parents[2] / "docs" / "openapi.yaml").read_text())
VERBS = {"get", "post", "put", "patch", "delete"}


def _template(pattern: str) -> str:
    """'/canfar-jlab/runs/(?P<run_name>...)' -> '/runs/{run_name}'."""
    path = pattern.split(f"/{ROUTE_PREFIX}", 1)[1]
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path)


def _served() -> set[tuple[str, str]]:
    return {
        (_template(pattern), method.lower())
        for pattern, handler in route_table()
        for method in handler.SUPPORTED_METHODS
    }


def _documented() -> set[tuple[str, str]]:
    return {(path, verb) for path, item in SPEC["paths"].items() for verb in item if verb in VERBS}


def test_every_served_route_and_verb_is_documented_and_nothing_else():
    assert _served() == _documented()


def _validate(payload: object, schema_name: str) -> None:
    # The component schema, with the document's components beside it for its $refs.
    schema = {**SPEC["components"]["schemas"][schema_name], "components": SPEC["components"]}
    jsonschema.validate(payload, schema)


async def test_answers_match_the_documented_schemas(jp_fetch):
    config = json.loads((await jp_fetch("canfar-jlab", "config")).body)
    _validate(config, "Config")
    sessions = json.loads((await jp_fetch("canfar-jlab", "sessions")).body)["sessions"]
    for session in sessions:
        _validate(session, "Session")
