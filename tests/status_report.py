"""Notebook cells that write a replica status report (`replicas/<i>/status.json`, contract
format 1) the way the runner does, for testing the reader with real replicas."""

from __future__ import annotations

# A cell that writes the status report the way the runner does (contract format 1).
REPORTER = """
import datetime, json, os, pathlib, time
def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
folder = pathlib.Path(os.environ["CANFAR_RUN_DIR"]) / "replicas" / os.environ["REPLICA_ID"]
folder.mkdir(parents=True, exist_ok=True)
def report(**fields):
    data = {"format": 1, "replica": int(os.environ["REPLICA_ID"]),
            "count": int(os.environ["REPLICA_COUNT"]),
            "session_id": os.environ.get("skaha_sessionid"), "attempt": 1, "runner": "script",
            "heartbeat": now(), "cell": {"index": 1, "total": 1, "first_line": "import"}}
    data.update(fields)
    temporary = folder / ".status.json.tmp"
    temporary.write_text(json.dumps(data))
    os.replace(temporary, folder / "status.json")
started = now()
report(state="running", started=started, ended=None, exit_code=None)
"""

SLEEPS_3 = (
    REPORTER
    + """
time.sleep(3)
report(state="completed", started=started, ended=now(), exit_code=0,
       peak_rss_bytes=50_000_000, cpu_seconds=0.25, files=["result.txt"])
print("done")
"""
)

# Replica 1 claims a peak near its 2 GB request, replica 2 a small one; both are then killed
# from outside (SIGKILL) without writing an end.
KILLED = (
    REPORTER
    + """
peak = int(1.95 * 2**30) if os.environ["REPLICA_ID"] == "1" else 10_000_000
report(state="running", started=started, ended=None, exit_code=None, peak_rss_bytes=peak)
import signal
os.kill(os.getpid(), signal.SIGKILL)
"""
)
