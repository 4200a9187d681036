"""The REST layer and the live channel against malformed input: one test per defect the attack
on the landed project found (issue 15). Every refusal is a 4xx with one bounded line, never a
traceback, and nothing is written to disk for a refused request."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os

import pytest
import tornado.httpclient
import tornado.websocket
from runs_support import write_notebook
from server_config import server_config


@pytest.fixture
def jp_server_config(jp_server_config, runs_root):
    return server_config({"runs_root": str(runs_root)})


def _notebook(path, *cells: str) -> str:
    return write_notebook(path, list(cells)).name


async def _refused(jp_fetch, *path, body: bytes | str | None, method="POST") -> tuple[int, str]:
    if isinstance(body, str):
        body = body.encode()
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("canfar-jlab", *path, method=method, body=body)
    code, text = info.value.code, info.value.response.body.decode("utf-8", "replace")
    assert 400 <= code < 500, (code, text[:300])
    assert "Traceback" not in text
    message = json.loads(text)["message"]
    assert "\n" not in message and len(message) <= 500
    return code, message


def _folders(runs_root) -> list[str]:
    return sorted(p.name for p in runs_root.iterdir()) if runs_root.exists() else []


# ------------------------------------------------------------------ bodies


@pytest.mark.parametrize("route", [("runs",), ("runs", "preview"), ("runs", "some-run", "rerun")])
async def test_a_body_that_is_not_utf8_is_invalid_json(jp_fetch, route):
    code, message = await _refused(jp_fetch, *route, body=b'{"notebook": "\xff\xfe"}')
    assert code == 400 and "invalid JSON" in message


async def test_nesting_deeper_than_the_recursion_limit_is_a_400(jp_fetch):
    deep = '{"notebook": "a.ipynb", "parameters": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    code, message = await _refused(jp_fetch, "runs", "preview", body=deep)
    assert code == 400 and "nested deeper" in message


async def test_an_integer_of_5000_digits_is_a_400(jp_fetch, runs_root):
    body = '{"notebook": "a.ipynb", "replicas": ' + "9" * 5000 + "}"
    code, message = await _refused(jp_fetch, "runs", body=body)
    assert code == 400 and "9999999999" not in message
    assert _folders(runs_root) == []


async def test_a_json_array_body_is_a_400(jp_fetch):
    code, message = await _refused(jp_fetch, "runs", body="[1, 2]")
    assert code == 400 and "object" in message


# ------------------------------------------------------------------ notebook paths


async def test_a_notebook_that_is_a_symlink_loop_is_a_400(jp_fetch, jp_root_dir):
    os.symlink("loop.ipynb", jp_root_dir / "loop.ipynb")
    code, message = await _refused(jp_fetch, "runs", body=json.dumps({"notebook": "loop.ipynb"}))
    assert code == 400 and "loop.ipynb" in message


@pytest.mark.parametrize(
    "notebook",
    ["n" * 300 + ".ipynb", "/".join(["d" * 200] * 25) + "/x.ipynb"],
    ids=["name", "path"],
)
async def test_names_and_paths_beyond_the_os_limits_are_a_400(jp_fetch, notebook, runs_root):
    for route in (("runs",), ("runs", "preview")):
        code, message = await _refused(jp_fetch, *route, body=json.dumps({"notebook": notebook}))
        assert code == 400 and ("too long" in message or "longer than" in message)
        assert len(message) < 300
    assert _folders(runs_root) == []


async def test_a_hidden_notebook_is_refused_as_jupyter_refuses_it(jp_fetch, jp_root_dir):
    _notebook(jp_root_dir / ".hidden" / "nb.ipynb", "print(1)")
    _notebook(jp_root_dir / ".secret.ipynb", "print(1)")
    for notebook in (".hidden/nb.ipynb", ".secret.ipynb"):
        body = json.dumps({"notebook": notebook})
        code, message = await _refused(jp_fetch, "runs", "preview", body=body)
        assert code == 404 and "does not exist" in message
    # Jupyter's own contents API says the same about the file.
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("api", "contents", ".secret.ipynb")
    assert info.value.code == 404


# ------------------------------------------------------------------ values that failed later


async def test_parameters_nested_500_deep_are_refused_and_leave_no_folder(
    jp_fetch, jp_root_dir, runs_root
):
    name = _notebook(jp_root_dir / "p.ipynb", "x = 1")
    nested: object = 1
    for _ in range(500):
        nested = [nested]
    body = json.dumps({"notebook": name, "parameters": {"x": nested}, "name": "deep"})
    for route in (("runs", "preview"), ("runs",)):
        code, message = await _refused(jp_fetch, *route, body=body)
        assert code == 400 and "nested deeper than 32" in message  # refused before parsing
        # Within what the body may nest, still deeper than parameters may: the model refuses.
        twenty: object = 1
        for _ in range(20):
            twenty = [twenty]
        shallow = {"notebook": name, "parameters": {"x": twenty}}
        code, message = await _refused(jp_fetch, *route, body=json.dumps(shallow))
        assert code == 400 and "parameters" in message and "16 levels" in message
    assert _folders(runs_root) == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"A": "x\x00y"}, "NUL"),
        ({f"V{i}": "x" for i in range(1000)}, "at most 256"),
        ({"A": None}, "must be strings"),
        ({"A": [1]}, "must be strings"),
        ({"A": "y" * 70_000}, "bytes in all"),
    ],
    ids=["nul", "1000-variables", "null", "list", "too-large"],
)
async def test_env_that_would_fail_after_creation_is_refused_up_front(
    jp_fetch, jp_root_dir, runs_root, env, expected
):
    name = _notebook(jp_root_dir / "e.ipynb", "x = 1")
    body = json.dumps({"notebook": name, "env": env})
    for route in (("runs", "preview"), ("runs",)):
        code, message = await _refused(jp_fetch, *route, body=body)
        assert code == 400 and expected in message, message
    assert _folders(runs_root) == []


async def test_an_image_of_300000_characters_is_refused_without_echoing_it(
    jp_fetch, jp_root_dir, runs_root
):
    name = _notebook(jp_root_dir / "i.ipynb", "x = 1")
    body = json.dumps({"notebook": name, "image": "images.canfar.net/" + "a" * 300_000})
    code, message = await _refused(jp_fetch, "runs", body=body)
    assert code == 400 and "longer than 512" in message and len(message) < 300
    assert _folders(runs_root) == []


@pytest.mark.parametrize("size", [100_000, 1_000_000])
async def test_error_messages_quote_at_most_200_characters(jp_fetch, jp_root_dir, size):
    for body in (
        {"notebook": "z" * size + ".ipynb"},
        {"notebook": "a.ipynb", "name": "q" * size},
        {"notebook": "a.ipynb", "env": {"N" * size: "v"}},
        {"notebook": "a.ipynb", "secret_env": ["S" * size]},
    ):
        _, message = await _refused(jp_fetch, "runs", body=json.dumps(body))
        longest = max(len(run) for run in message.replace("z", "q").split(" "))
        assert longest <= 205, message[:300]


# ------------------------------------------------------------------ the live channel


async def _receive(ws, timeout: float = 30.0) -> dict:
    message = await asyncio.wait_for(ws.read_message(), timeout)
    assert message is not None, "the server closed the live channel"
    return json.loads(message)


async def test_malformed_websocket_messages_get_an_error_and_keep_the_socket(jp_ws_fetch, caplog):
    ws = await jp_ws_fetch("canfar-jlab", "live")
    malformed = [
        "[" * 100_000 + "]" * 100_000,
        "[1, 2]",
        "42",
        "not json",
        json.dumps({"op": ["subscribe"], "topic": {"a": 1}}),
        json.dumps({"op": "subscribe", "topic": "logs", "session": "abc\n"}),
        json.dumps({"op": "subscribe", "topic": "logs", "session": "abc", "offset": True}),
        json.dumps({"op": "subscribe", "topic": "logs", "session": "abc", "offset": 10**40}),
        json.dumps({"op": "x" * 100_000, "topic": "y"}),
    ]
    for text in malformed:
        ws.write_message(text)
        reply = await _receive(ws)
        assert reply["type"] == "error" and len(reply["message"]) < 200, reply
    await ws.write_message(b"\xff\xfe not utf-8", binary=True)
    assert (await _receive(ws))["type"] == "error"
    ws.write_message(json.dumps({"op": "subscribe", "topic": "sessions"}))
    assert (await _receive(ws))["type"] == "sessions"  # the socket is still there
    ws.close()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_the_log_subscription_cap_is_exact(jp_ws_fetch):
    from canfar_jlab.server.live import MAX_LOG_SUBSCRIPTIONS

    ws = await jp_ws_fetch("canfar-jlab", "live")
    for i in range(MAX_LOG_SUBSCRIPTIONS + 1):
        request = {"op": "subscribe", "topic": "logs", "session": f"nosuch{i}"}
        ws.write_message(json.dumps(request))
    refusals = 0
    # Unknown sessions end at once; count the refusals among everything that comes back.
    while True:
        try:
            message = await _receive(ws, timeout=5.0)
        except asyncio.TimeoutError:
            break
        refusals += message.get("message") == "too many log subscriptions"
    ws.close()
    assert refusals == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_other_verbs_on_live_are_a_plain_405(jp_fetch, method, caplog):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch(
            "canfar-jlab",
            "live",
            method=method,
            body=None if method == "DELETE" else b"{}",
            allow_nonstandard_methods=True,
        )
    assert info.value.code == 405
    assert info.value.response.body == b"Method Not Allowed\n"
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_live_refusals_carry_no_token(
    jp_fetch, jp_serverapp, jp_http_port, jp_base_url, caplog
):
    # (jp_fetch: the fixture that has the server listen on jp_http_port)
    token = jp_serverapp.identity_provider.token
    url = f"http://localhost:{jp_http_port}{jp_base_url}canfar-jlab/live?token={token}"
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    for headers in ({}, {"Origin": "http://evil.example"}, {**upgrade, "Origin": "http://x.y"}):
        client = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            await client.fetch(url, headers=headers, request_timeout=20)
        client.close()
        assert info.value.code in (400, 403), headers
        assert token not in info.value.response.body.decode("utf-8", "replace")
    assert not [r for r in caplog.records if token in r.getMessage()]


# ------------------------------------------------------------------ secret env


async def test_secret_env_reaches_replicas_and_nothing_else(
    jp_fetch, jp_root_dir, runs_root, monkeypatch, caplog
):
    secret = "s3cr3t-value-8d1f"
    monkeypatch.setenv("CANFAR_TEST_SECRET", secret)
    caplog.set_level(logging.DEBUG)
    code_cell = (  # the replica writes a digest of what it got, never the value itself
        "import hashlib, os, pathlib\n"
        "out = pathlib.Path(os.environ['CANFAR_RUN_OUTPUTS'])\n"
        "got = os.environ.get('CANFAR_TEST_SECRET', '').encode()\n"
        "(out / ('seen-' + os.environ['REPLICA_ID'])).write_text(hashlib.sha256(got).hexdigest())"
    )
    name = _notebook(jp_root_dir / "secret.ipynb", code_cell)
    body = json.dumps({"notebook": name, "secret_env": ["CANFAR_TEST_SECRET"], "name": "sec"})
    texts = []
    response = await jp_fetch("canfar-jlab", "runs", "preview", method="POST", body=body)
    texts.append(response.body.decode())
    preview = json.loads(response.body)
    assert preview["replicas"][0]["env"]["CANFAR_TEST_SECRET"] == "(secret)"
    response = await jp_fetch("canfar-jlab", "runs", method="POST", body=body)
    texts.append(response.body.decode())
    run = json.loads(response.body)
    assert run["spec"]["secret_env"] == ["CANFAR_TEST_SECRET"]
    seen = runs_root / "sec" / "outputs" / "seen-1"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while not seen.exists():
        assert loop.time() < deadline, "the replica never wrote its file"
        await asyncio.sleep(0.2)
    assert seen.read_text() == hashlib.sha256(secret.encode()).hexdigest()  # it got the value
    while True:  # until its log is archived
        response = await jp_fetch("canfar-jlab", "runs", "sec")
        texts.append(response.body.decode())
        if all(r["log"] for r in json.loads(response.body)["replicas"]):
            break
        assert loop.time() < deadline
        await asyncio.sleep(0.2)
    texts.append((await jp_fetch("canfar-jlab", "runs")).body.decode())
    on_disk = [p.read_text(errors="replace") for p in (runs_root / "sec").rglob("*") if p.is_file()]
    logged = [r.getMessage() for r in caplog.records]
    for text in texts + on_disk + logged:
        assert secret not in text


async def test_a_secret_env_that_is_not_set_is_refused(jp_fetch, jp_root_dir, runs_root):
    name = _notebook(jp_root_dir / "s.ipynb", "x = 1")
    body = json.dumps({"notebook": name, "secret_env": ["CANFAR_TEST_UNSET_SECRET"]})
    code, message = await _refused(jp_fetch, "runs", body=body)
    assert code == 400 and "CANFAR_TEST_UNSET_SECRET" in message
    assert _folders(runs_root) == []
