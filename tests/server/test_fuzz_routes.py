"""Property-based fuzzing of every REST route (hypothesis): at least 300 generated requests per
run, built from the extension's own route table (a route added later is fuzzed too), each
answered below 500, with no traceback and no token in the body, and a refused request leaves
nothing behind: no run folder, no session on the engine.

Hypothesis drives a synchronous HTTP client from a worker thread while the Jupyter server keeps
serving on the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_config import server_config

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.server.handlers import route_table

EXAMPLES = 320
OTHER_METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH")

_nasty_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "../x.ipynb",
            "/etc/passwd",
            ".hidden.ipynb",
            "x" * 300,
            "-",
            "${X}",
            '"',
            "\\",
            "\u202e",
            "loop.ipynb",
            "ok.ipynb",
            "ask.ipynb",
            "dir",
        ]
    ),
)
_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _nasty_text
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_nasty_text, inner, max_size=4)
    ),
    max_leaves=12,
)
_launch = st.fixed_dictionaries(
    {},
    optional={
        "notebook": st.one_of(st.sampled_from(["ok.ipynb", "ask.ipynb", "loop.ipynb"]), _json),
        "replicas": st.one_of(st.integers(-3, 300), _json),
        "name": st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,70}", fullmatch=True), _json),
        "image": _json,
        "cores": _json,
        "ram": _json,
        "gpus": _json,
        "env": st.one_of(st.dictionaries(_nasty_text, _json, max_size=3), _json),
        "parameters": st.one_of(st.dictionaries(_nasty_text, _json, max_size=3), _json),
        "secret_env": st.one_of(st.lists(_nasty_text, max_size=2), _json),
        "failed_only": _json,
        "unknown": _json,
    },
)
_body = st.one_of(
    _launch.map(lambda d: json.dumps(d).encode()),
    _json.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.sampled_from(
        [b"", b"{", b'{"notebook": "\xff"}', b"[" * 5000, b'{"replicas": 1' + b"9" * 5000 + b"}"]
    ),
)
_query = st.dictionaries(
    st.sampled_from(["offset", "active", "token", "x"]), _nasty_text, max_size=2
)


def _route_paths() -> list[tuple[str, list[str], st.SearchStrategy[str]]]:
    """(pattern, methods, strategy of concrete paths) for every route of the extension."""
    routes = []
    for pattern, handler in route_table():
        groups = re.findall(r"\(\?P<\w+>([^)]*)\)", pattern)
        parts = re.split(r"\(\?P<\w+>[^)]*\)", pattern)

        def build(values, parts=parts):
            out = parts[0]
            for value, tail in zip(values, parts[1:], strict=True):
                out += value + tail
            return out.lstrip("/")

        values = st.tuples(*[st.from_regex(g, fullmatch=True) for g in groups])
        routes.append((pattern, list(handler.SUPPORTED_METHODS), values.map(build)))
    return routes


ROUTES = _route_paths()
_request = st.tuples(
    st.integers(0, len(ROUTES) - 1),
    st.booleans(),  # a method the route serves, or any
    st.sampled_from(OTHER_METHODS),
    st.data(),
)


@pytest.fixture
def jp_server_config(jp_server_config, runs_root):
    return server_config({"runs_root": str(runs_root)})


def _notebook(path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)


async def test_every_route_survives_generated_requests(
    jp_fetch, jp_serverapp, jp_http_port, jp_base_url, jp_root_dir, runs_root
):
    # (jp_fetch: the fixture that has the server listen on jp_http_port)
    assert (await jp_fetch("canfar-jlab", "config")).code == 200  # engine up before timing
    _notebook(jp_root_dir / "ok.ipynb", "x = 1\nprint(x)")
    _notebook(jp_root_dir / "ask.ipynb", "input('name? ')")
    (jp_root_dir / "loop.ipynb").symlink_to("loop.ipynb")
    (jp_root_dir / "dir").mkdir()
    jupyter_token = jp_serverapp.identity_provider.token
    creds = engine_credentials()
    engine_token = creds.token.reveal()
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    outcome = await asyncio.to_thread(
        _fuzz, base, jupyter_token, creds.base_url, engine_token, runs_root
    )
    assert outcome["requests"] >= 300
    print(f"{outcome['requests']} requests, statuses {sorted(outcome['statuses'].items())}")


def _fuzz(base: str, token: str, engine_url: str, engine_token: str, runs_root) -> dict:
    server = httpx.Client(
        base_url=base, headers={"Authorization": f"token {token}"}, trust_env=False, timeout=60
    )
    engine = httpx.Client(
        base_url=engine_url,
        headers={"Authorization": f"Bearer {engine_token}"},
        trust_env=False,
        timeout=30,
    )
    statuses: dict[int, int] = {}

    def state() -> tuple[frozenset[str], frozenset[str]]:
        folders = (
            frozenset(p.name for p in runs_root.iterdir()) if runs_root.exists() else frozenset()
        )
        sessions = frozenset(s["id"] for s in engine.get("/session").json())
        return folders, sessions

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_request)
    def check(request) -> None:
        index, served, other, data = request
        _pattern, methods, paths = ROUTES[index]
        method = data.draw(st.sampled_from(methods)) if served else other
        path = data.draw(paths)
        query = data.draw(_query)
        body = data.draw(_body) if method in ("POST", "PUT", "PATCH") else None
        before = state()
        response = server.request(method, path, params=query, content=body)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        text = response.text
        assert response.status_code < 500, (method, path, body and body[:200], text[:300])
        assert "Traceback" not in text
        assert token not in text and engine_token not in text
        if response.status_code >= 400:
            assert state() == before, f"a refused {method} {path} left something behind"

    try:
        check()
        for folder in runs_root.iterdir() if runs_root.exists() else ():
            assert (folder / "run.json").exists(), f"{folder.name}: a folder with no run.json"
    finally:
        for session in engine.get("/session").json():  # launches that were accepted
            engine.delete(f"/session/{session['id']}")
        server.close()
        engine.close()
    return {"requests": sum(statuses.values()), "statuses": statuses}
