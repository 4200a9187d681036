"""Finding, starting and stopping the engine: control API, files and modes, races, settings,
and the `canfar-jlab engine` CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fixtures_engine import RunningEngine, start_engine

from canfar_jlab.engine.control import EngineError, engine_status, ensure_engine, stop_engine


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_and_the_token_stays_out_of_reprs(engine: RunningEngine) -> None:
    root = engine.home / "engine"
    assert _mode(root) == 0o700
    assert _mode(engine.info.token_file) == 0o600
    assert _mode(root / "state.json") == 0o600
    assert _mode(root / "engine.db") == 0o600
    token = engine.info.token()
    assert len(token) >= 32
    assert token not in repr(engine.info) and token not in str(engine.info)
    assert token not in (root / "state.json").read_text()
    assert token not in (root / "engine.log").read_text()


def test_status_describes_the_running_engine(engine: RunningEngine) -> None:
    info = engine_status(engine.home)
    assert info == engine.info
    assert info.url.startswith("http://127.0.0.1:") and info.url.endswith("/skaha")
    assert info.state == "running"
    assert ensure_engine(engine.home).pid == info.pid  # already running: the same engine


def test_nothing_running(tmp_path: Path) -> None:
    assert engine_status(tmp_path) is None
    assert stop_engine(tmp_path) is False


def test_a_bad_setting_is_reported_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as caught:
        ensure_engine(tmp_path, timeout=60, config={"log_cap": "lots"})
    message = str(caught.value)
    assert "\n" not in message and "log_cap" in message
    assert engine_status(tmp_path) is None


def test_concurrent_starts_make_one_engine(tmp_path: Path) -> None:
    code = (
        "import sys; from canfar_jlab.engine.control import ensure_engine;"
        "print(ensure_engine(sys.argv[1], timeout=60).pid)"
    )
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    try:
        pids = {int(racer.communicate(timeout=90)[0]) for racer in racers}
        assert len(pids) == 1
        info = engine_status(tmp_path)
        assert info.pid == pids.pop()
        token = info.token()
        assert stop_engine(tmp_path, timeout=60) is True
        assert engine_status(tmp_path) is None
        assert not (tmp_path / "engine" / "state.json").exists()
        assert ensure_engine(tmp_path, timeout=60).token() == token  # kept across restarts
    finally:
        stop_engine(tmp_path, timeout=60, terminate_replicas=True)


def test_settings_from_file_and_environment(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "engine").mkdir(mode=0o700)
    (tmp_path / "engine" / "config.yaml").write_text("cores: 3\nretention: 2d\n")
    monkeypatch.setenv("CANFAR_JLAB_ENGINE_IMAGE_HOSTS", "images.canfar.net,localhost:5000")
    running = start_engine(tmp_path)
    try:
        with running.client() as client:
            assert client.get("/context").json()["cores"]["options"] == [1, 2, 3]
            assert client.get("/repository").json() == ["images.canfar.net", "localhost:5000"]
            refused = client.post(
                "/session", params={"name": "x", "image": "docker.io/python:3", "cmd": "true"}
            )
            assert refused.status_code == 400
            assert refused.text == (
                "session image 'docker.io/python:3' must come from one of "
                "[images.canfar.net, localhost:5000]\n"
            )
    finally:
        running.stop()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canfar_jlab", "engine", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("CANFAR_JLAB_ENGINE_")},
    )


def test_cli_start_status_stop(tmp_path: Path) -> None:
    started = _cli(tmp_path, "start", "--cores", "2", "--retention", "1d", "--json")
    assert started.returncode == 0, started.stderr
    data = json.loads(started.stdout)
    assert {"url", "pid", "state", "token_file"} <= set(data)
    assert data["state"] == "running" and data["url"].endswith("/skaha")
    token = Path(data["token_file"]).read_text().strip()
    try:
        context = httpx.get(
            f"{data['url']}/v1/context",
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
        ).json()
        assert context["cores"]["options"] == [1, 2]

        again = _cli(tmp_path, "start")
        assert again.returncode == 0 and "already running" in again.stdout
        status = _cli(tmp_path, "status", "--json")
        assert status.returncode == 0
        assert json.loads(status.stdout)["pid"] == data["pid"]
    finally:
        stopped = _cli(tmp_path, "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    after = _cli(tmp_path, "status", "--json")
    assert after.returncode == 3 and json.loads(after.stdout)["state"] == "stopped"


def test_cli_reports_errors_in_one_line(tmp_path: Path) -> None:
    result = _cli(tmp_path, "start", "--log-cap", "lots")
    assert result.returncode != 0
    assert result.stderr.startswith("canfar-jlab: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
