"""The client against a misbehaving Skaha on 127.0.0.1 (tests/fake_skaha.py), over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import parse_qsl

from client_support import TEST_TOKEN, token_credentials
from fake_skaha import (
    Delay,
    DropMidBody,
    EchoCredentials,
    FakeSkaha,
    LoseReply,
    Malformed,
    Redirect,
    Stall,
    Status,
)

from canfar_jlab.models import SessionSpec, SessionStatus
from canfar_jlab.server.base import http_status
from canfar_jlab.skaha import (
    AuthError,
    BadReply,
    InvalidRequest,
    NotFound,
    RedirectRefused,
    SkahaClient,
    Unavailable,
    UpstreamTimeout,
)

SPEC = SessionSpec(
    name="sweep",
    image="images.canfar.net/skaha/base:1",
    cmd="python",
    args=["run.py", "-n", "3"],
    env={"MODE": "fast"},
)


def form(recorded) -> list[tuple[str, str]]:
    return parse_qsl(recorded.body.decode())


# ------------------------------------------------------------------ every call, well behaved


async def test_every_read_call_parses_and_sends_the_credential(fake, make_client):
    running = fake.add_session("job-1", ramInUse="0.25", cpuCoresInUse="0.5")
    done = fake.add_session("job-2", status="Completed")
    async with make_client(fake.url) as client:
        sessions = await client.list_sessions()
        assert {s.id for s in sessions} == {running, done}
        assert [s.id for s in await client.list_sessions(status="completed")] == [done]
        session = await client.get_session(running)
        assert session.status is SessionStatus.RUNNING and session.ram_in_use_gb == 0.25
        assert session.start_time is not None  # "…T10:05Z" from the fake, read tolerantly
        images = await client.images()
        assert images[0].id.endswith("astroml:latest") and images[0].types == [
            "notebook",
            "headless",
        ]
        context = await client.context()
        assert context.max_interactive_sessions == 5 and context.cores.options == [1, 2, 4, 8]
        stats = await client.platform_stats()
        assert stats.cores.cpu_cores_available == 96 and stats.ram.ram_available == "512G"
        availability = await client.availability()
        assert availability.available and availability.note == "fake skaha is up"
        assert await client.repositories() == ["images.canfar.net"]
        assert await client.events(running) == ""
        await client.renew(running)
        await client.delete(running)
        await client.delete("zzzzzzzz")  # unknown: still fine, as on Skaha
    assert running not in fake.sessions
    for request in fake.requests:
        assert request.headers["Authorization"] == f"Bearer {TEST_TOKEN}"
        assert request.headers["User-Agent"].startswith("canfar-jlab/")
        assert TEST_TOKEN not in request.path + str(request.query)
    assert fake.recorded("GET", "/skaha/availability"), "availability lives outside /v1"
    renew = fake.recorded("POST", f"/session/{running}")[0]
    assert form(renew) == [("action", "renew")]


async def test_unknown_session_is_not_found_and_bad_ids_are_not_sent(fake, make_client, raises):
    async with make_client(fake.url) as client:
        with raises(NotFound, match="not found") as caught:
            await client.get_session("abcdefgh")
        assert caught.value.status == 404
        with raises(InvalidRequest, match="not a session id"):
            await client.get_session("../context")
        with raises(InvalidRequest):
            await client.delete("a b")
    assert len(fake.requests) == 1


# ------------------------------------------------------------------ misbehaviour


async def test_a_slow_reply_times_out_without_retrying(fake, make_client, raises):
    fake.fail_next("GET session", Delay(2.0))
    async with make_client(fake.url, timeout=0.3) as client:
        with raises(
            UpstreamTimeout, match="did not answer GET /skaha/v1/session in time"
        ) as caught:
            await client.list_sessions()
    assert caught.value.code == "upstream_timeout" and http_status(caught.value) == 504
    assert len(fake.recorded("GET", "/session")) == 1


async def test_500_is_reported_with_skahas_message_and_not_retried(fake, make_client, raises):
    fake.fail_next("GET session/*", Status(500, "unexpected exception: java.lang.Boom"))
    sid = fake.add_session("x")
    async with make_client(fake.url) as client:
        with raises(Unavailable, match="HTTP 500: unexpected exception: java.lang.Boom") as caught:
            await client.get_session(sid)
    assert caught.value.status == 500 and http_status(caught.value) == 502
    assert len(fake.requests) == 1


async def test_503_is_retried_after_the_time_the_service_asks_for(fake, make_client, caplog):
    fake.fail_next("GET stats", Status(503, "temporarily unavailable: null", {"Retry-After": "1"}))
    fake.fail_next("GET stats", Status(502, "bad gateway"))
    async with make_client(fake.url) as client:
        stats = await client.platform_stats()
    assert stats.cores.requested_cpu_cores == 12
    assert len(fake.recorded("GET", "/session")) == 3
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying")]
    assert retries[0] == "retrying GET /skaha/v1/session in 1.00 s after HTTP 503 (attempt 2)"
    assert "after HTTP 502" in retries[1] and "in 1.00 s" not in retries[1]


async def test_a_retry_after_beyond_the_bound_is_reported_not_waited_for(fake, make_client, raises):
    fake.fail_next("GET stats", Status(503, "read-only mode", {"Retry-After": "3600"}))
    async with make_client(fake.url) as client:
        with raises(Unavailable, match="HTTP 503: read-only mode") as caught:
            await client.platform_stats()
    assert caught.value.retry_after == 3600
    assert len(fake.requests) == 1


async def test_503_every_time_gives_up_after_the_attempt_budget(fake, make_client, raises):
    for _ in range(3):
        fake.fail_next("GET session", Status(503, "busy", {"Retry-After": "0"}))
    async with make_client(fake.url) as client:
        with raises(Unavailable, match="HTTP 503: busy"):
            await client.list_sessions()
    assert len(fake.requests) == 3


async def test_malformed_json_is_a_clear_error(fake, make_client, raises):
    fake.fail_next("GET session", Malformed())
    fake.fail_next("GET context", Malformed(b"[1, 2"))
    async with make_client(fake.url) as client:
        with raises(BadReply, match="malformed JSON for session") as caught:
            await client.list_sessions()
        assert caught.value.code == "upstream_bad_reply"
        with raises(BadReply, match="malformed JSON for context"):
            await client.context()


async def test_a_connection_dropped_mid_body_is_retried_for_reads(fake, make_client):
    sid = fake.add_session("survivor")
    fake.fail_next("GET session", DropMidBody())
    async with make_client(fake.url) as client:
        assert [s.id for s in await client.list_sessions()] == [sid]
    assert len(fake.recorded("GET", "/session")) == 2


async def test_a_connection_dropped_every_time_ends_in_one_clear_error(fake, make_client, raises):
    for _ in range(3):
        fake.fail_next("GET session", DropMidBody())
    async with make_client(fake.url) as client:
        with raises(
            Unavailable, match="connection to 127.0.0.1 broke during GET /skaha/v1/session"
        ):
            await client.list_sessions()


async def test_nobody_listening_is_retried_then_unavailable(make_client, raises):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with make_client(f"http://127.0.0.1:{port}/skaha/v1") as client:
        with raises(Unavailable, match=r"cannot reach .* \(ConnectError\)") as caught:
            await client.list_sessions()
    assert caught.value.status is None


async def test_a_redirect_to_another_host_is_not_followed(fake, other_host, make_client, raises):
    fake.fail_next("GET session", Redirect(f"{other_host.url}/session?x=1"))
    fake.fail_next("DELETE session/*", Redirect(f"{other_host.url}/session/abcdefgh", code=307))
    async with make_client(fake.url) as client:
        with raises(RedirectRefused, match=r"redirected to another host \(127.0.0.1\)"):
            await client.list_sessions()
        with raises(RedirectRefused):
            await client.delete("abcdefgh")
    assert other_host.requests == []  # nothing, let alone the credential, reached the other host


async def test_a_redirect_to_another_port_of_the_same_host_is_refused_too(
    fake, other_host, make_client, raises
):
    assert other_host.root.split(":")[1] == fake.root.split(":")[1]  # same host, other port
    fake.fail_next("GET context", Redirect(f"{other_host.url}/context"))
    async with make_client(fake.url) as client:
        with raises(RedirectRefused):
            await client.context()
    assert other_host.requests == []


async def test_a_same_origin_redirect_is_followed(fake, make_client):
    fake.fail_next("GET session", Redirect(f"{fake.url}/session?type=headless"))
    sid = fake.add_session("moved")
    async with make_client(fake.url) as client:
        assert [s.id for s in await client.list_sessions()] == [sid]
    followed = fake.requests[-1]
    assert followed.query == [("type", "headless")]
    assert followed.headers["Authorization"] == f"Bearer {TEST_TOKEN}"


# ------------------------------------------------------------------ credentials at the wire


async def test_a_refused_token_names_its_source_and_the_fix(fake, make_client, raises):
    async with make_client(fake.url, token="tok-wrong") as client:
        with raises(AuthError, match="refused the credential from the test's token") as caught:
            await client.list_sessions()
    assert caught.value.status == 401
    assert "HTTP 401: invalid or expired token" in str(caught.value)
    assert "ask the test for a new token" in str(caught.value)


async def test_a_server_echoing_the_token_does_not_make_us_repeat_it(fake, make_client, raises):
    fake.fail_next("GET session", EchoCredentials())
    async with make_client(fake.url) as client:
        with raises(AuthError, match=r"rejected Bearer \*\*\*") as caught:
            await client.list_sessions()
    assert TEST_TOKEN not in str(caught.value)


async def test_an_expired_credential_is_refused_before_anything_is_sent(fake, raises):
    from datetime import datetime, timedelta, timezone

    past = datetime.now(timezone.utc) - timedelta(minutes=5)
    client = SkahaClient(token_credentials(fake.url, expires_at=past))
    async with client:
        with raises(AuthError, match="credential from the test's token expired at"):
            await client.list_sessions()
    assert fake.requests == []


# ------------------------------------------------------------------ create and replicas


async def test_replicas_are_created_like_the_official_client(fake, make_client):
    async with make_client(fake.url) as client:
        outcomes = await client.create_replicas(SPEC, 3)
    assert [(o.index, o.name, o.ok, o.reconciled) for o in outcomes] == [
        (1, "sweep-1", True, False),
        (2, "sweep-2", True, False),
        (3, "sweep-3", True, False),
    ]
    posts = fake.recorded("POST", "/skaha/v1/session")
    assert len(posts) == 3 and fake.creates == 3
    for post in posts:
        assert post.query == []  # form-encoded body, nothing in the URL
        assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
        fields = form(post)
        index = fields[0][1].rsplit("-", 1)[1]
        assert fields == [
            ("name", f"sweep-{index}"),
            ("image", "images.canfar.net/skaha/base:1"),
            ("type", "headless"),
            ("cmd", "python"),
            ("args", "run.py -n 3"),
            ("env", "MODE=fast"),
            ("env", f"REPLICA_ID={index}"),
            ("env", "REPLICA_COUNT=3"),
        ]
    by_id = {o.session_id: o for o in outcomes}
    for session_id, session in fake.sessions.items():
        assert session["name"] == by_id[session_id].name


async def test_one_replica_keeps_its_name_and_still_gets_replica_env(fake, make_client):
    async with make_client(fake.url) as client:
        [outcome] = await client.create_replicas(SPEC, 1)
    assert outcome.name == "sweep" and outcome.ok
    assert form(fake.recorded("POST")[0])[-2:] == [
        ("env", "REPLICA_ID=1"),
        ("env", "REPLICA_COUNT=1"),
    ]


async def test_a_lost_create_reply_is_reconciled_without_a_duplicate(fake, make_client):
    fake.add_session("sweep-2", status="Completed")  # an earlier run's replica with the same name
    fake.fail_next("POST session", LoseReply())
    async with make_client(fake.url) as client:
        outcomes = await client.create_replicas(SPEC, 3, concurrency=1)
    assert all(o.ok for o in outcomes)
    assert [o.reconciled for o in outcomes] == [True, False, False]
    assert fake.creates == 3  # nothing created twice
    assert len(fake.sessions_named("sweep-1")) == 1
    old = next(s["id"] for s in fake.sessions_named("sweep-2") if s["status"] == "Completed")
    assert old not in {o.session_id for o in outcomes}


async def test_a_create_that_times_out_after_creating_is_reconciled(fake, make_client):
    fake.fail_next("POST session", Stall(2.0))
    async with make_client(fake.url, timeout=0.3) as client:
        [outcome] = await client.create_replicas(SPEC, 1)
    assert outcome.ok and outcome.reconciled
    assert outcome.session_id == fake.sessions_named("sweep")[0]["id"]
    assert fake.creates == 1


async def test_a_5xx_create_that_made_nothing_is_created_again_once(fake, make_client):
    fake.fail_next("POST session", Status(500, "unexpected exception: k8s hiccup"))
    async with make_client(fake.url) as client:
        outcomes = await client.create_replicas(SPEC, 2, concurrency=1)
    assert all(o.ok and not o.reconciled for o in outcomes)
    assert len(fake.recorded("POST")) == 3 and fake.creates == 2
    assert len(fake.sessions_named("sweep-1")) == 1


async def test_failures_are_reported_per_replica_never_dropped(fake, make_client):
    fake.fail_next("POST session", Status(400, "Invalid value for 'cores': 99"))
    async with make_client(fake.url) as client:
        outcomes = await client.create_replicas(SPEC, 3, concurrency=1)
    failed = [o for o in outcomes if not o.ok]
    assert len(outcomes) == 3 and len(failed) == 1
    assert failed[0].error == "Invalid value for 'cores': 99" and failed[0].error_status == 400
    assert fake.creates == 2


async def test_a_create_that_never_answers_is_reported_after_the_rounds(fake, make_client):
    for _ in range(3):
        fake.fail_next("POST session", Status(503, "down"))
    async with make_client(fake.url) as client:
        [outcome] = await client.create_replicas(SPEC, 1, rounds=3)
    assert not outcome.ok and outcome.error_status == 503
    assert "HTTP 503: down" in outcome.error
    assert "no session named sweep appeared after 3 tries" in outcome.error
    assert fake.creates == 0


async def test_only_some_replicas_of_a_run_can_be_created_again(fake, make_client):
    failed = fake.add_session("sweep-2", status="Failed")  # the first try of replica 2
    async with make_client(fake.url) as client:
        [outcome] = await client.create_replicas(SPEC, 3, only=[2])
    assert (outcome.index, outcome.name, outcome.ok) == (2, "sweep-2", True)
    assert outcome.session_id != failed
    [post] = fake.recorded("POST")
    assert form(post)[0] == ("name", "sweep-2")
    assert form(post)[-2:] == [("env", "REPLICA_ID=2"), ("env", "REPLICA_COUNT=3")]


async def test_invalid_replica_names_send_nothing(fake, make_client, raises):
    long = SessionSpec(name="x" * 62, image="img:1")
    async with make_client(fake.url) as client:
        with raises(InvalidRequest, match="session name"):
            await client.create_replicas(long, 10)
        with raises(InvalidRequest, match="between 1 and 256"):
            await client.create_replicas(SPEC, 300)
        with raises(InvalidRequest, match=r"among 1\.\.3"):
            await client.create_replicas(SPEC, 3, only=[4])
    assert fake.requests == []


async def test_replicas_are_created_concurrently_within_the_bound(fake, make_client):
    for _ in range(4):
        fake.fail_next("POST session", Delay(0.2))
    async with make_client(fake.url) as client:
        outcomes = await asyncio.wait_for(client.create_replicas(SPEC, 8, concurrency=4), 10)
    assert all(o.ok for o in outcomes) and fake.creates == 8


# ------------------------------------------------------------------ logs


async def test_logs_with_an_offset_from_a_service_that_ignores_it(fake, make_client):
    sid = fake.add_session("logger")
    fake.append_log(sid, "héllo\nworld\n")
    async with make_client(fake.url) as client:
        whole = await client.logs(sid)
        assert (whole.text, whole.next_offset, whole.honoured) == ("héllo\nworld\n", 13, False)
        rest = await client.logs(sid, offset=7)
        assert (rest.text, rest.next_offset, rest.honoured) == ("world\n", 13, False)


async def test_logs_with_an_offset_the_service_honours(make_client):
    with FakeSkaha(TEST_TOKEN, honour_offset=True) as fake:
        sid = fake.add_session("logger")
        fake.append_log(sid, "one\ntwo\n")
        async with make_client(fake.url) as client:
            chunk = await client.logs(sid, offset=4)
    assert (chunk.text, chunk.next_offset, chunk.honoured) == ("two\n", 8, True)
    assert ("offset", "4") in fake.requests[-1].query


def growing_log(fake: FakeSkaha, sid: str, pieces: list[bytes]) -> None:
    """On the k-th log read, append pieces[k-1] first; after the last piece the session ends."""

    def grow(session_id: str, count: int) -> None:
        if count <= len(pieces):
            fake.append_log(session_id, pieces[count - 1])
        if count == len(pieces):
            fake.set_status(session_id, "Completed")

    fake.on_log_read = grow


PIECES = [
    b"line 1\nline 2\npart",  # a partial last line
    b"ial 3\n",
    b"",  # nothing new this poll
    b"line 4\n\xc3",  # a partial UTF-8 character, too
    b"\xa9 5\nprogress 10%\rprogress 20%\r",
    b"last line without newline",
]


async def test_tail_of_a_whole_log_that_grows_emits_each_line_once(fake, make_client):
    sid = fake.add_session("grower")
    growing_log(fake, sid, PIECES)
    async with make_client(fake.url) as client:
        chunks = [text async for text in client.tail(sid, poll_interval=0.01)]
    whole = b"".join(PIECES).decode()
    assert "".join(chunks) == whole
    assert all(chunk.endswith(("\n", "\r")) for chunk in chunks[:-1])  # whole lines only
    lines = "".join(chunks).splitlines()
    assert lines.count("partial 3") == 1 and "é 5" in lines
    assert chunks[-1].endswith("last line without newline")
    reads = [
        r.query for r in fake.recorded("GET", f"/session/{sid}") if ("view", "logs") in r.query
    ]
    assert ("offset", "0") in reads[0]  # asked once whether offsets are honoured...
    assert all(len(query) == 1 for query in reads[1:])  # ...then diffed whole logs


async def test_tail_uses_the_offset_extension_when_honoured(make_client):
    with FakeSkaha(TEST_TOKEN, honour_offset=True) as fake:
        sid = fake.add_session("grower")
        growing_log(fake, sid, PIECES)
        async with make_client(fake.url) as client:
            chunks = [text async for text in client.tail(sid, poll_interval=0.01)]
        offsets = [
            dict(r.query).get("offset") for r in fake.recorded("GET") if ("view", "logs") in r.query
        ]
    assert "".join(chunks) == b"".join(PIECES).decode()
    assert offsets[:3] == ["0", "18", "24"]  # only new bytes were asked for


async def test_tail_notices_a_log_that_was_cut_upstream(fake, make_client):
    sid = fake.add_session("rotated")
    fake.append_log(sid, "old 1\nold 2\n")

    def rotate(session_id: str, count: int) -> None:
        if count == 2:
            with fake.lock:
                fake.logs[session_id] = b"new 1\n"
            fake.set_status(session_id, "Failed")

    fake.on_log_read = rotate
    async with make_client(fake.url) as client:
        text = "".join([t async for t in client.tail(sid, poll_interval=0.01)])
    assert text == "old 1\nold 2\n[canfar-jlab: the log was cut or rotated upstream]\nnew 1\n"


async def test_logs_from_an_offset_past_a_shrunk_log_shows_the_new_log_after_a_notice(
    fake, make_client
):
    sid = fake.add_session("restarted")
    fake.append_log(sid, "old 1\nold 2\n")
    async with make_client(fake.url) as client:
        first = await client.logs(sid, 0)
        with fake.lock:
            fake.logs[sid] = b"new 1\n"  # the service restarted the log
        after = await client.logs(sid, first.next_offset)
    assert first.text == "old 1\nold 2\n" and not first.honoured
    assert after.text == "[canfar-jlab: the log was cut or rotated upstream]\nnew 1\n"
    assert after.next_offset == len(b"new 1\n")


async def test_tail_ends_when_the_session_disappears(fake, make_client):
    sid = fake.add_session("vanishing")

    def vanish(session_id: str, count: int) -> None:
        fake.append_log(session_id, f"tick {count}\n")
        if count == 2:
            with fake.lock:
                del fake.sessions[session_id]

    fake.on_log_read = vanish
    async with make_client(fake.url) as client:
        text = "".join([t async for t in client.tail(sid, poll_interval=0.01)])
    assert text == "tick 1\ntick 2\ntick 3\n"  # the last read came after it was gone


async def test_tail_of_an_unknown_session_is_not_found(fake, make_client, raises):
    async with make_client(fake.url) as client:
        with raises(NotFound):
            async for _ in client.tail("abcdefgh", poll_interval=0.01):
                pass


async def test_tail_rides_out_a_short_outage(fake, make_client, caplog):
    sid = fake.add_session("steady", status="Completed")
    fake.append_log(sid, "done\n")
    for _ in range(3):  # one whole poll's attempts fail
        fake.fail_next("GET session/*", Status(503, "busy", {"Retry-After": "0"}))
    async with make_client(fake.url) as client:
        text = "".join([t async for t in client.tail(sid, poll_interval=0.01)])
    assert text == "done\n"
    assert any(
        "polling again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO
    )


async def test_the_run_follower_cuts_lines_only_at_line_ends_across_replies(fake, make_client):
    from canfar_jlab.models import Replica, Run
    from canfar_jlab.runs.follow import RunFollower

    sid = fake.add_session("follow-1")
    growing_log(fake, sid, [b"page\x0cbreak \xc3", b"\xa9\nsame\nsame\n"])
    run = Run.model_construct(
        name="follow",
        folder="/nonexistent",
        replicas=[Replica(index=1, name="follow-1", session_id=sid)],
    )
    lines: list[tuple[int, str]] = []
    async with make_client(fake.url) as client:
        follower = RunFollower(client, lambda index, line: lines.append((index, line)))
        await follower.pump(run)
        await follower.pump(run)
    assert lines == [(1, "page\x0cbreak é"), (1, "same"), (1, "same")]
