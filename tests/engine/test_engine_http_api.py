"""The engine's Skaha API over real HTTP: auth, routes, fields, validation, errors, log offsets."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

import httpx
import pytest
from engine_helpers import IMAGE, TOOL, create, delete, logs, session, wait_log, wait_status
from fixtures_engine import RunningEngine

ID = re.compile(r"[a-z][a-z0-9]{7}")
OFFSET_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?Z")
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
FIELD_ORDER = [
    "id",
    "userid",
    "runAsUID",
    "runAsGID",
    "supplementalGroups",
    "image",
    "type",
    "status",
    "name",
    "startTime",
    "expiryTime",
    "connectURL",
    "requestedRAM",
    "requestedCPUCores",
    "requestedGPUCores",
    "ramInUse",
    "cpuCoresInUse",
    "isFixedResources",
]


@pytest.fixture
def client(engine: RunningEngine):
    with engine.client() as c:
        yield c


@pytest.fixture
def anonymous(engine: RunningEngine):
    with httpx.Client(base_url=engine.url, trust_env=False, timeout=30) as c:
        yield c


def _ids(client: httpx.Client) -> set[str]:
    return {s["id"] for s in client.get("/session").json()}


# ------------------------------------------------------------------ authentication


@pytest.mark.parametrize(
    "path",
    [
        "/v1/session",
        "/v1/session?view=stats",
        "/v1/session/abcdefgh",
        "/v1/image",
        "/v1/context",
        "/v1/repository",
        "/v0/session",
    ],
)
def test_requests_without_the_token_get_401(anonymous: httpx.Client, path: str) -> None:
    response = anonymous.get(path)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.endswith("\n") and response.text.count("\n") == 1
    assert "bearer" in response.headers["www-authenticate"].lower()


def test_a_wrong_token_gets_401_and_creates_nothing(engine: RunningEngine, client) -> None:
    before = _ids(client)
    with httpx.Client(
        base_url=f"{engine.url}/v1", headers={"Authorization": "Bearer nope"}, trust_env=False
    ) as wrong:
        response = wrong.post("/session", params={"name": "x", "image": IMAGE, "cmd": "true"})
    assert response.status_code == 401
    assert _ids(client) == before


def test_authenticated_answers_name_the_user(client) -> None:
    response = client.get("/context")
    assert response.status_code == 200
    assert response.headers["x-vo-authenticated"]


# ------------------------------------------------------------------ VOSI and discovery


def test_capabilities_let_canfar_discover_v1_with_token_auth(anonymous, engine) -> None:
    response = anonymous.get("/capabilities", headers={"Accept": "application/xml"})
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    found = {}
    for capability in root.iter("capability"):
        for interface in capability.iter("interface"):
            base = [a.text for a in interface.iter("accessURL") if a.get("use") == "base"]
            methods = [m.get("standardID") for m in interface.iter("securityMethod")]
            if base:
                found[capability.get("standardID")] = (base[0], methods)
    url, methods = found["http://www.opencadc.org/std/platform#session-1"]
    assert url == f"{engine.url}/v1/session"
    assert "ivo://ivoa.net/sso#token" in methods


def test_availability_says_available(anonymous) -> None:
    response = anonymous.get("/availability")
    root = ET.fromstring(response.content)
    ns = "{http://www.ivoa.net/xml/VOSIAvailability/v1.0}"
    assert root.find(f"{ns}available").text == "true"
    assert root.find(f"{ns}note").text


# ------------------------------------------------------------------ methods, paths, aliases


def test_wrong_methods_get_405_with_allow(client) -> None:
    response = client.put("/session")
    assert response.status_code == 405
    assert response.text == "unsupported: HTTP PUT\n"
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST", "DELETE"}
    assert client.post("/context").status_code == 405
    assert client.delete("/image").status_code == 405


def test_delete_without_an_id_is_refused(client) -> None:
    response = client.delete("/session")
    assert (response.status_code, response.text) == (400, "Cannot kill all sessions.\n")


def test_too_many_path_parts_are_refused(client) -> None:
    response = client.get("/session/a/b/c/d")
    assert (response.status_code, response.text) == (400, "Invalid request: a/b/c/d\n")


def test_v0_serves_the_same_sessions(engine: RunningEngine, client) -> None:
    session_id = create(client, "alias", "exit", "0")
    with httpx.Client(
        base_url=f"{engine.url}/v0",
        headers={"Authorization": f"Bearer {engine.token}"},
        trust_env=False,
    ) as v0:
        assert v0.get(f"/session/{session_id}").json()["id"] == session_id
        assert v0.get("/context").json() == client.get("/context").json()
    delete(client, session_id)


# ------------------------------------------------------------------ create and read back


def test_create_answers_an_id_as_text_and_the_session_reads_back(client) -> None:
    response = client.post(
        "/session",
        params={
            "name": "Read-Back",
            "image": IMAGE,
            "cmd": sys.executable,
            "args": f"{TOOL} exit 0",
            "cores": "2",
            "ram": "1",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    session_id = response.text.strip()
    assert response.text == session_id + "\n" and ID.fullmatch(session_id)
    wait_status(client, session_id, "Completed")
    data = session(client, session_id)
    assert list(data) == [k for k in FIELD_ORDER if k in data]
    assert data["name"] == "read-back"  # lower-cased, as Skaha stores it
    assert data["type"] == "headless" and data["image"] == IMAGE
    assert data["connectURL"] == ""
    assert data["isFixedResources"] is True
    assert data["requestedRAM"] == "1.07"  # 1 GiB in decimal GB
    assert data["requestedCPUCores"] == "2"
    assert data["requestedGPUCores"] == "0"
    assert OFFSET_DATETIME.fullmatch(data["startTime"])
    assert INSTANT.fullmatch(data["expiryTime"])
    assert "ramInUse" not in data and "cpuCoresInUse" not in data  # not running: no metrics
    assert all(value is not None for value in data.values())
    delete(client, session_id)


def test_flexible_sessions_omit_requested_resources(client) -> None:
    session_id = create(client, "flexible", "exit", "0", cores="1")
    data = wait_status(client, session_id, "Completed") and session(client, session_id)
    assert data["isFixedResources"] is False
    assert "requestedRAM" not in data and "requestedCPUCores" not in data
    delete(client, session_id)


def test_running_sessions_report_live_usage(client, tmp_path) -> None:
    session_id = create(client, "usage", "sleep")
    wait_log(client, session_id, "PID")
    data = session(client, session_id)
    assert data["status"] == "Running"
    assert float(data["ramInUse"]) > 0  # a Python interpreter holds several MB
    assert re.fullmatch(r"\d+\.\d{3}", data["cpuCoresInUse"])
    assert "startTime" in data and "expiryTime" in data
    delete(client, session_id)


def test_parameters_from_a_form_body_with_repeated_env(client) -> None:
    response = client.post(
        "/session",
        params={"name": "form", "image": IMAGE},  # part in the query string ...
        data={  # ... the rest in the form body
            "cmd": sys.executable,
            "args": f"{TOOL} env ALPHA BETA",
            "env": ["ALPHA=1", "BETA=two words"],
        },
    )
    assert response.status_code == 200, response.text
    session_id = response.text.strip()
    wait_status(client, session_id, "Completed")
    out = logs(client, session_id)
    assert "ALPHA=1\n" in out and "BETA=two words\n" in out
    delete(client, session_id)


def test_env_with_an_equals_sign_in_the_value_is_dropped_like_skaha(client) -> None:
    session_id = create(client, "dropped", "env", "KEEP", "DROP", env=["KEEP=yes", "DROP=a=b"])
    wait_status(client, session_id, "Completed")
    out = logs(client, session_id)
    assert "KEEP=yes\n" in out and "DROP=<unset>\n" in out
    events = client.get(f"/session/{session_id}", params={"view": "events"}).text
    assert "EnvDropped" in events
    delete(client, session_id)


def test_list_filters_by_type_and_status_case_insensitively(client) -> None:
    done = create(client, "filter-done", "exit", "0")
    running = create(client, "filter-running", "sleep")
    wait_status(client, done, "Completed")
    wait_status(client, running, "Running")

    def ids(**params: str) -> set[str]:
        return {s["id"] for s in client.get("/session", params=params).json()}

    assert done in ids(status="completed") and running not in ids(status="completed")
    assert running in ids(status="RUNNING") and done not in ids(status="RUNNING")
    assert {done, running} <= ids(type="HEADLESS")
    assert ids(type="notebook") == set()
    public = client.get("/session", params={"view": "all"}).json()
    assert all(set(item) <= {"userid", "type", "status", "startTime"} for item in public)
    delete(client, done, running)


def test_replica_environment_and_working_directory(engine: RunningEngine, client) -> None:
    names = [
        "skaha_sessionid",
        "skaha_username",
        "skaha_hostname",
        "HOME",
        "PWD",
        "OMP_NUM_THREADS",
        "CANFAR_TOKEN",
    ]
    session_id = create(client, "environment", "env", *names, cores="2")
    wait_status(client, session_id, "Completed")
    out = logs(client, session_id)
    assert f"skaha_sessionid={session_id}\n" in out
    assert f"HOME={engine.workdir}\n" in out and f"PWD={engine.workdir}\n" in out
    assert f"CWD={engine.workdir}\n" in out
    assert "OMP_NUM_THREADS=2\n" in out
    assert "skaha_username=<unset>" not in out and "skaha_hostname=127.0.0.1:" in out
    assert "CANFAR_TOKEN=<unset>\n" in out
    delete(client, session_id)


# ------------------------------------------------------------------ bad input


def _context(client) -> dict:
    return client.get("/context").json()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "x"}, "Missing parameter 'image'"),
        ({"image": " ", "name": "x"}, "Missing parameter 'image'"),
        ({"image": IMAGE}, "Missing parameter 'name'"),
        ({"image": IMAGE, "name": "bad_name"}, "name can only contain alpha-numeric chars and '-'"),
        ({"image": IMAGE, "name": "x", "type": "batch"}, "Invalid session type: batch"),
        ({"image": IMAGE, "name": "x", "cores": "0"}, "Invalid value for 'cores': 0"),
        ({"image": IMAGE, "name": "x", "cores": "many"}, "Invalid value for 'cores': many"),
        ({"image": IMAGE, "name": "x", "cores": "9"}, "Invalid value for 'cores': 9"),
        ({"image": IMAGE, "name": "x", "ram": "100000"}, "Invalid value for 'ram': 100000"),
        ({"image": IMAGE, "name": "x", "gpus": "1"}, "Invalid value for 'gpus': 1"),
        # Order: the image is checked before the name, cores before the name.
        ({"name": "bad_name", "cores": "0"}, "Missing parameter 'image'"),
        ({"image": IMAGE, "name": "bad_name", "cores": "0"}, "Invalid value for 'cores': 0"),
    ],
)
def test_bad_input_gets_skahas_message_and_creates_nothing(client, params, message) -> None:
    before = _ids(client)
    response = client.post("/session", params={"cmd": "true", **params})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == message + "\n"
    assert _ids(client) == before


@pytest.mark.parametrize("entry", ["NAME", "NAME="])
def test_env_without_a_value_is_refused(client, entry) -> None:
    before = _ids(client)
    response = client.post(
        "/session", params={"image": IMAGE, "name": "x", "cmd": "true", "env": ["OK=1", entry]}
    )
    assert response.status_code == 400
    assert response.text.startswith("Invalid value for 'env': NAME")
    assert "no value" in response.text and response.text.count("\n") == 1
    assert _ids(client) == before


def test_interactive_types_and_missing_cmd_are_refused_clearly(client) -> None:
    notebook = client.post("/session", params={"image": IMAGE, "name": "x", "type": "notebook"})
    assert notebook.status_code == 400 and "headless sessions only" in notebook.text
    no_cmd = client.post("/session", params={"image": IMAGE, "name": "x"})
    assert no_cmd.status_code == 400 and no_cmd.text.startswith("Missing parameter 'cmd'")


def test_a_command_that_cannot_start_fails_with_a_message_in_its_log(client) -> None:
    response = client.post(
        "/session", params={"image": IMAGE, "name": "nocmd", "cmd": "/nonexistent/program"}
    )
    session_id = response.text.strip()
    wait_status(client, session_id, "Failed")
    assert "cannot start '/nonexistent/program'" in logs(client, session_id)
    delete(client, session_id)


# ------------------------------------------------------------------ unknown ids


def test_unknown_ids(client) -> None:
    missing = "zzzzzzzz"
    assert client.get(f"/session/{missing}").status_code == 404
    assert client.get(f"/session/{missing}").text == f"session {missing} not found\n"
    events = client.get(f"/session/{missing}", params={"view": "events"})
    assert (events.status_code, events.text) == (404, f"session {missing} not found.\n")
    log = client.get(f"/session/{missing}", params={"view": "logs"})
    assert (log.status_code, log.text) == (200, "")
    deleted = client.delete(f"/session/{missing}")
    assert (deleted.status_code, deleted.text) == (200, "")
    renew = client.post(f"/session/{missing}", params={"action": "renew"})
    assert renew.status_code == 400 and renew.text.startswith("No active job for user ")


# ------------------------------------------------------------------ renew, delete, events


def test_renew_and_other_actions(client) -> None:
    session_id = create(client, "renew", "sleep")
    wait_status(client, session_id, "Running")
    expiry = session(client, session_id)["expiryTime"]
    renewed = client.post(f"/session/{session_id}", params={"action": "RENEW"})
    assert (renewed.status_code, renewed.text) == (200, "")
    assert session(client, session_id)["expiryTime"] == expiry  # 14 d left > 4 d: unchanged
    other = client.post(f"/session/{session_id}", params={"action": "pause"})
    assert (other.status_code, other.text) == (400, "unrecognized action\n")
    none = client.post(f"/session/{session_id}")
    assert (none.status_code, none.text) == (400, "Cannot modify an existing session\n")
    delete(client, session_id)


def test_delete_removes_the_session(client) -> None:
    session_id = create(client, "deleted", "sleep")
    wait_status(client, session_id, "Running")
    response = client.delete(f"/session/{session_id}")
    assert (response.status_code, response.text) == (200, "")
    wait_status(client, session_id, None)  # Terminating briefly, then gone like a deleted Job
    assert session_id not in _ids(client)


def test_events_table(client) -> None:
    session_id = create(client, "events", "exit", "0")
    wait_status(client, session_id, "Completed")
    text = client.get(f"/session/{session_id}", params={"view": "events"}).text
    header, *rows = text.splitlines()
    assert header.split() == ["TYPE", "REASON", "MESSAGE", "FIRST-TIME", "LAST-TIME"]
    assert any(row.split()[:2] == ["Normal", "Started"] for row in rows)
    assert any(row.split()[:2] == ["Normal", "Completed"] for row in rows)
    delete(client, session_id)


# ------------------------------------------------------------------ logs with an offset


def test_log_offset_returns_only_new_bytes_with_the_next_offset(client, tmp_path) -> None:
    go = tmp_path / "go"
    session_id = create(client, "tail", "spam", "1000", str(go))
    full = wait_log(client, session_id, "done\n")
    plain = client.get(f"/session/{session_id}", params={"view": "logs"})
    assert "x-skaha-log-offset" not in plain.headers  # plain Skaha answer
    first = client.get(f"/session/{session_id}", params={"view": "logs", "offset": "0"})
    assert first.content == full.encode()
    assert int(first.headers["x-skaha-log-offset"]) == len(full)
    tail = client.get(f"/session/{session_id}", params={"view": "logs", "offset": "995"})
    assert tail.content == full.encode()[995:]
    assert tail.headers["x-skaha-log-offset"] == str(len(full))
    nothing = client.get(
        f"/session/{session_id}", params={"view": "logs", "offset": str(len(full))}
    )
    assert (nothing.content, nothing.headers["x-skaha-log-offset"]) == (b"", str(len(full)))
    bad = client.get(f"/session/{session_id}", params={"view": "logs", "offset": "-1"})
    assert (bad.status_code, bad.text) == (400, "Invalid value for 'offset': -1\n")
    go.touch()
    wait_status(client, session_id, "Completed")
    delete(client, session_id)


# ------------------------------------------------------------------ images, context, stats


def test_images_say_there_is_no_container_runtime(client) -> None:
    response = client.get("/image")
    assert response.status_code == 200
    assert response.headers["x-canfar-jlab-runtime"] == "none"
    images = response.json()
    assert images and all({"id", "types", "digest"} <= set(i) for i in images)
    assert all("Python environment" in i["note"] for i in images)
    assert client.get("/image", params={"type": "headless"}).json() == images
    assert client.get("/image", params={"type": "notebook"}).json() == []
    unknown = client.get("/image", params={"type": "gpu"})
    assert (unknown.status_code, unknown.text) == (400, "unknown type: gpu\n")


def test_context_repository_and_stats(client) -> None:
    context = client.get("/context").json()
    assert context["cores"]["options"] == list(range(1, 9))  # the fixture's capacity: 8
    assert context["cores"]["defaultLimit"] == 8
    assert context["memoryGB"]["options"][0] == 1
    assert context["gpus"] == {"options": []}
    assert client.get("/repository").json() == ["images.canfar.net"]
    stats = client.get("/session", params={"view": "stats"}).json()
    assert stats["cores"]["cpuCoresAvailable"] == 8.0
    assert isinstance(stats["cores"]["requestedCPUCores"], float)
    assert stats["ram"]["ramAvailable"].endswith("G")
    assert stats["ram"]["maxRAM"]["ram"].endswith("Gi")
