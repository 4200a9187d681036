"""Notebook cells for testing what the run service reads from the replicas' own status reports
(`replicas/<i>/status.json`, written by the runner)."""

from __future__ import annotations

SLEEPS_3 = "import time\ntime.sleep(3)\nprint('done')"

# Run with a 1 GB RAM request:
# 1: holds 300 MB until the runner's report shows it, then is killed from outside the way
#    Skaha's OOM killer does at the cgroup limit, with no word in the log; the report's last
#    peak is set near the limit first, as the runner's last heartbeat before such a kill
#    would have it.
# 2: killed from outside (SIGKILL to its runner) with a small peak.
# 3: holds 2 GiB: the engine kills it past its limit and says so (OOMKilled), a known out of
#    memory.
KILLED = """
import json, os, pathlib, signal, time
import psutil
replica = os.environ["REPLICA_ID"]
if replica == "3":
    held = bytearray(2 * 2**30)
held = bytearray(300 * 2**20) if replica == "1" else bytearray(10**6)
path = pathlib.Path(os.environ["CANFAR_RUN_DIR"]) / "replicas" / replica / "status.json"
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        report = {}
    if (report.get("peak_rss_bytes") or 0) >= len(held):
        break
    time.sleep(0.2)
if replica == "1":
    report["peak_rss_bytes"] = int(0.95 * 2**30)
    path.with_suffix(".tmp").write_text(json.dumps(report))
    os.replace(path.with_suffix(".tmp"), path)
me = psutil.Process()
runner = me.parent() if "canfar_runner" in " ".join(me.parent().cmdline()) else me
runner.send_signal(signal.SIGKILL)
time.sleep(60)
"""


def engine_lifetime(engine_home, session_id: str, timeout: float = 60.0) -> tuple[float, float]:
    """The real run of a replica on the local engine, measured by the engine, not the runner:
    (when its supervisor started the replica's process, when that process had ended), epoch
    seconds, from the supervisor's own records. Waits for the end to be recorded."""
    import time

    from canfar_jlab.engine.layout import EXIT_FILE, SUPERVISOR_FILE, EngineLayout, read_json

    folder = EngineLayout(engine_home).session_dir(session_id)
    deadline = time.monotonic() + timeout
    while (outcome := read_json(folder / EXIT_FILE)) is None:
        assert time.monotonic() < deadline, f"{session_id} did not end"
        time.sleep(0.05)
    return read_json(folder / SUPERVISOR_FILE)["started"], outcome["ended"]


def assert_real_run(replica: dict, real: tuple[float, float], within: float = 1.0) -> None:
    """The record's started, ended and duration are those of the real run, to `within` s."""
    from datetime import datetime

    started = datetime.fromisoformat(replica["started"]).timestamp()
    ended = datetime.fromisoformat(replica["ended"]).timestamp()
    real_started, real_ended = real
    facts = {"started": started - real_started, "ended": ended - real_ended}
    facts["duration"] = (ended - started) - (real_ended - real_started)
    assert all(abs(gap) <= within for gap in facts.values()), (replica["name"], facts)
