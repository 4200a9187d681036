"""The wire models: lenient on what Skaha sends (v0 and v1), strict on what we send."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from canfar_jlab.models import (
    Context,
    Image,
    PlatformStats,
    ReplicaOutcome,
    Session,
    SessionSpec,
    SessionStatus,
    explain,
    parse_timestamp,
    replica_names,
)

V1_SESSION = {
    "id": "ab12cd34",
    "userid": "alice",
    "runAsUID": "20001",
    "runAsGID": "20001",
    "supplementalGroups": [30001],
    "image": "images.canfar.net/skaha/astroml:latest",
    "type": "headless",
    "status": "Running",
    "name": "job-1",
    "startTime": "2026-01-01T10:00:05Z",
    "expiryTime": "2026-01-15T10:00:05Z",
    "connectURL": "",
    "requestedGPUCores": "0",
    "ramInUse": "0.25",
    "cpuCoresInUse": "0.998",
    "isFixedResources": False,
}

V0_SESSION = {
    "id": "xk2p9q1z",
    "userid": "bob",
    "appid": "<none>",
    "image": "images.canfar.net/skaha/base:1",
    "type": "headless",
    "status": "Succeeded",
    "name": "old",
    "startTime": "<none>",
    "connectURL": "not-applicable",
    "requestedRAM": "16G",
    "requestedCPUCores": "2",
    "ramInUse": "<none>",
}


def test_v1_session_reads_every_field_and_dumps_back_to_wire_names():
    session = Session.model_validate(V1_SESSION)
    assert session.status is SessionStatus.RUNNING
    assert session.start_time == datetime(2026, 1, 1, 10, 0, 5, tzinfo=timezone.utc)
    assert session.cores_in_use == pytest.approx(0.998)
    assert session.ram_in_use_gb == pytest.approx(0.25)
    assert session.requested_ram is None and session.requested_ram_gb is None
    wire = session.model_dump(mode="json", exclude_none=True)
    assert wire["runAsUID"] == "20001" and wire["isFixedResources"] is False
    assert wire["startTime"] == "2026-01-01T10:00:05Z"


def test_v0_session_is_normalised():
    session = Session.model_validate(V0_SESSION)
    assert session.status is SessionStatus.COMPLETED
    assert session.appid is None and session.start_time is None and session.ram_in_use is None
    assert session.connect_url == ""
    assert session.requested_ram == "17.18"  # 16Gi in v1's decimal GB
    assert session.requested_cores == 2


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        ("Succeeded", SessionStatus.COMPLETED),
        ("Error", SessionStatus.FAILED),
        ("completed", SessionStatus.COMPLETED),
        ("Terminating", SessionStatus.TERMINATING),
        ("Evicted", SessionStatus.UNKNOWN),
        (None, SessionStatus.UNKNOWN),
    ],
)
def test_status_names_of_both_versions(wire, status):
    assert Session.model_validate({"id": "a1", "status": wire}).status is status


def test_only_id_is_required_and_unknown_fields_are_kept():
    session = Session.model_validate({"id": "a1", "somethingNew": {"x": 1}})
    assert session.status is SessionStatus.UNKNOWN
    assert session.model_dump()["somethingNew"] == {"x": 1}
    with pytest.raises(ValidationError):
        Session.model_validate({"name": "no-id"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-05T21:48Z", datetime(2025, 3, 5, 21, 48, tzinfo=timezone.utc)),
        ("2025-03-05T21:48:29Z", datetime(2025, 3, 5, 21, 48, 29, tzinfo=timezone.utc)),
        (
            "2025-03-05T21:48:29.123456789Z",
            datetime(2025, 3, 5, 21, 48, 29, 123456, tzinfo=timezone.utc),
        ),
        ("2025-03-05T23:48:29+02:00", datetime(2025, 3, 5, 21, 48, 29, tzinfo=timezone.utc)),
        ("2025-03-05 21:48:29", datetime(2025, 3, 5, 21, 48, 29, tzinfo=timezone.utc)),
        ("<none>", None),
        ("yesterday", None),
        ("2025-13-45T99:99Z", None),
        (12345, None),
    ],
)
def test_timestamps_are_read_tolerantly(text, expected):
    assert parse_timestamp(text) == expected


def test_context_accepts_a_string_session_limit():
    context = Context.model_validate(
        {
            "cores": {"defaultRequest": 1, "defaultLimit": 8, "options": [1, 2]},
            "maxInteractiveSessions": "5",
        }
    )
    assert context.max_interactive_sessions == 5 and context.cores.default_limit == 8
    assert Context.model_validate({"maxInteractiveSessions": 3}).max_interactive_sessions == 3
    assert Context.model_validate({}).gpus.options == []


def test_image_and_stats_shapes():
    image = Image.model_validate({"id": "img:1", "types": ["headless"], "digest": "sha256:1"})
    assert image.types == ["headless"]
    stats = PlatformStats.model_validate(
        {
            "cores": {"requestedCPUCores": 3.5, "cpuCoresAvailable": 10},
            "ram": {"requestedRAM": "1G"},
        }
    )
    assert stats.cores.cpu_cores_available == 10 and stats.ram.requested_ram == "1G"


def test_spec_lowercases_the_name_and_builds_canfar_ordered_form_fields():
    spec = SessionSpec(
        name="Job-A",
        image="img:1",
        cores=2,
        ram=4,
        cmd="python",
        args=["run.py", "--x", "1"],
        env={"FOO": "bar", "REPLICA_ID": "9"},
    )
    assert spec.name == "job-a"
    fields = spec.form_fields(name="job-a-2", extra_env={"REPLICA_ID": "2", "REPLICA_COUNT": "3"})
    assert fields == [
        ("name", "job-a-2"),
        ("image", "img:1"),
        ("cores", "2"),
        ("ram", "4"),
        ("type", "headless"),
        ("cmd", "python"),
        ("args", "run.py --x 1"),
        ("env", "FOO=bar"),
        ("env", "REPLICA_ID=2"),
        ("env", "REPLICA_COUNT=3"),
    ]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"name": "bad name"}, "session name"),
        ({"name": "-lead"}, "session name"),
        ({"name": "x" * 64}, "session name"),
        ({"args": ["two words"]}, "contains a space"),
        ({"args": ["$HOME"]}, "'\\$'"),
        ({"args": ['say"hi"']}, "'\"'"),
        ({"cmd": "C:\\bin"}, "'\\\\\\\\'"),
        ({"env": {"A": "x=y"}}, "contains '='"),
        ({"env": {"A": ""}}, "is empty"),
        ({"env": {"A B": "x"}}, "not a valid environment variable name"),
        ({"env": {"A": "$1"}}, "'\\$'"),
        ({"args": "one string"}, "list of arguments"),
        ({"type": "notebook", "cmd": "python"}, "only allowed for headless"),
        ({"type": "rocket"}, "unknown session type"),
        ({"cores": 0}, "greater than or equal to 1"),
    ],
)
def test_spec_refuses_what_skaha_would_mangle_with_one_line_reason(fields, reason):
    with pytest.raises(ValidationError) as caught:
        SessionSpec(**{"name": "ok", "image": "img:1", **fields})
    message = explain(caught.value)
    assert "\n" not in message
    assert re.search(reason, message), message


def test_gpus_zero_means_none():
    assert SessionSpec(name="g", image="i", gpus=0).gpus is None


def test_replica_names_follow_the_official_client():
    assert replica_names("job", 1) == ["job"]
    assert replica_names("job", 3) == ["job-1", "job-2", "job-3"]
    with pytest.raises(ValueError, match="session name"):
        replica_names("x" * 62, 10)  # x...x-10 is 65 characters
    with pytest.raises(ValueError, match="between 1 and 256"):
        replica_names("job", 0)


def test_replica_outcome():
    assert ReplicaOutcome(index=1, name="a", session_id="s1").ok
    assert not ReplicaOutcome(index=2, name="a", error="HTTP 400").ok
