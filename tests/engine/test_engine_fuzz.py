"""Property-based fuzzing of the local engine's API (hypothesis): whatever a client sends, the
engine answers below 500, with no traceback and no token in the answer, and a refused create
leaves no session behind."""

from __future__ import annotations

import json
import string
import sys

import httpx
import pytest
from engine_helpers import IMAGE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = 120

# Text that breaks parsers: control characters, NUL, quotes, unicode, huge or empty values.
_nasty = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.printable, max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "\n",
            "%00",
            "../../etc",
            "-",
            "x" * 5000,
            "1" * 5000,
            "NaN",
            "-1",
            "1e400",
            "0x10",
            "${HOME}",
            '"',
            "\\",
            "\u202e",
            "\ud7ff",
        ]
    ),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
_name = st.one_of(_nasty, st.from_regex(r"[a-z0-9][a-z0-9-]{0,70}", fullmatch=True))
_env = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", _nasty, _nasty),
    _nasty,
)
_create = st.fixed_dictionaries(
    {},
    optional={
        "name": _name,
        "image": st.one_of(st.just(IMAGE), _nasty),
        "type": st.one_of(st.just("headless"), _nasty),
        "cores": _nasty,
        "ram": _nasty,
        "gpus": _nasty,
        "cmd": st.one_of(st.just(sys.executable), _nasty),
        "args": st.one_of(st.just("-c pass"), _nasty),
        "env": st.lists(_env, max_size=5),
        "view": _nasty,
        "action": _nasty,
        "offset": _nasty,
        "status": _nasty,
    },
)
_path = st.one_of(
    st.sampled_from(
        [
            "/session",
            "/session/",
            "/image",
            "/context",
            "/repository",
            "/session?view=stats",
            "/logstream",
        ]
    ),
    st.builds(
        lambda i: f"/session/{i}", st.text(alphabet=string.ascii_letters + "/.%-", max_size=30)
    ),
    st.builds(
        lambda i: f"/session/{i}?view=logs", st.text(alphabet=string.ascii_lowercase, max_size=12)
    ),
    st.builds(
        lambda i: f"/session/{i}?view=events", st.text(alphabet=string.ascii_lowercase, max_size=12)
    ),
)
_request = st.tuples(
    st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"]),
    _path,
    _create,
    st.sampled_from(["form", "query", "raw"]),
    st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda sessions: json.dumps({"sessions": sessions}).encode(),
            st.dictionaries(_nasty, st.one_of(st.integers(), _nasty), max_size=3),
        ),
        st.sampled_from([b"[" * 100_000, b'{"sessions": {"abc\\n": 0}}', b"\xff{"]),
    ),
    st.sampled_from(["valid", "missing", "wrong", "suffixed", "basic"]),
)


@pytest.fixture(scope="module")
def fuzz_engine(tmp_path_factory):
    from fixtures_engine import start_engine

    running = start_engine(tmp_path_factory.mktemp("fuzz-engine"), cores=2)
    yield running
    running.stop()


def test_no_request_makes_the_engine_fail_leak_or_half_create(fuzz_engine) -> None:
    token = fuzz_engine.token
    client = httpx.Client(
        base_url=f"{fuzz_engine.url}/v1",
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
        timeout=30.0,
    )
    seen: list[int] = []

    def ids() -> set[str]:
        return {s["id"] for s in client.get("/session").json()}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_request)
    def check(request) -> None:
        method, path, params, how, raw, auth = request
        before = ids()
        headers = {
            "valid": {},
            "missing": {"Authorization": ""},
            "wrong": {"Authorization": "Bearer not-the-token"},
            "suffixed": {"Authorization": f"Bearer {token}x"},
            "basic": {"Authorization": f"Basic {token}"},
        }[auth]
        if how == "form" and method in ("POST", "PUT", "PATCH", "DELETE"):
            response = client.request(method, path, data=params, headers=headers)
        elif how == "raw":
            headers["Content-Type"] = (
                "application/json" if "logstream" in path else "application/x-www-form-urlencoded"
            )
            response = client.request(method, path, content=raw, headers=headers)
        else:
            response = client.request(method, path, params=params, headers=headers)
        seen.append(response.status_code)
        body = response.text
        assert response.status_code < 500, (method, path, body[:300])
        assert "Traceback" not in body
        assert token not in body and token not in str(response.headers)
        if response.status_code >= 400:
            assert ids() == before, f"a refused {method} {path} changed the sessions"
            assert len(body) < 400, body[:400]  # one bounded line, not an echo of the input

    try:
        check()
    finally:
        for session_id in ids():  # valid creates ran a replica: leave nothing behind
            client.delete(f"/session/{session_id}")
        client.close()
    assert len(seen) >= 100
    engine_log = (fuzz_engine.home / "engine" / "engine.log").read_text(errors="replace")
    assert token not in engine_log
