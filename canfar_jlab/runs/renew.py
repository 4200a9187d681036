"""Renewing a run: extend the deadline of every live replica through Skaha's renew action.

Skaha's rule (skaha-api.md §4.4): `POST session/{id}?action=renew` sets a session's deadline to
`elapsed + sessionexpiry` only when less than `sessionexpiry` (4 days on CANFAR) remains;
otherwise nothing changes. Headless sessions start with 14 days, so a renew does something only
in the last 4 days. The report says per replica what happened, read back from the service.

"Live" is decided by the service, not by run.json alone: a replica the record has not tied to a
session yet (a launch still creating, or one interrupted, that the reconciler has not adopted
from) is found by name, as the reconciler adopts it, so a replica that is visibly running is
never "nothing to renew".

`hours` is what the user wants left: replicas with at least that long before their deadline are
left alone, the others are renewed, and the report says when Skaha could not give that much.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from pydantic import BaseModel

from ..errors import InvalidInput, NothingToRenew
from ..models import Run
from ..skaha import NotFound, SkahaClient, SkahaError
from .adoption import adopt_by_name, awaiting_adoption

MIN_GAIN = 60.0  # seconds the deadline must move to count as renewed
NOT_NEAR = (
    "Skaha renews a session only when less than its renewal period (4 days on CANFAR) is left, "
    "and then only up to that period"
)


class RenewedReplica(BaseModel):
    index: int
    name: str
    session_id: str
    outcome: str  # renewed | unchanged | skipped | failed
    expiry_before: datetime | None = None
    expiry: datetime | None = None
    note: str | None = None


class RenewReport(BaseModel):
    """What `renew_run` did; the JSON of REST `POST runs/NAME/renew` and `renew --json`."""

    run: str
    hours: float | None = None
    replicas: list[RenewedReplica]

    @property
    def failed(self) -> list[RenewedReplica]:
        return [r for r in self.replicas if r.outcome == "failed"]

    def lines(self) -> list[str]:
        """One line per replica, for the CLI and the magic."""
        out = []
        for r in self.replicas:
            until = f" until {_shown(r.expiry)}" if r.expiry else ""
            note = f" ({r.note})" if r.note else ""
            out.append(f"[{r.index}] {r.name} {r.session_id}: {r.outcome}{until}{note}")
        return out


async def renew_run(
    run: Run, client: SkahaClient, hours: float | None = None, *, concurrency: int = 8
) -> RenewReport:
    """Renew every live replica of `run` (Pending or Running, as the service says now).

    Raises NothingToRenew when the run has no live replica. Per-replica failures are in the
    report, not raised.
    """
    if hours is not None and not 0 < hours <= 24 * 366:
        raise InvalidInput("hours must be a positive number of hours (at most a year)")
    candidates = await _live_sessions(run, client) if run.deleted is None else []
    if not candidates:
        raise NothingToRenew(f"run {run.name} has no live replica to renew")
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(index: int, name: str, session_id: str) -> RenewedReplica:
        async with gate:
            return await _renew_one(client, index, name, session_id, hours)

    done = await asyncio.gather(*(one(*each) for each in candidates))
    if all(r.outcome == "skipped" and r.note == "ended" for r in done):
        raise NothingToRenew(f"run {run.name} has no live replica to renew")
    return RenewReport(run=run.name, hours=hours, replicas=list(done))


async def _live_sessions(run: Run, client: SkahaClient) -> list[tuple[int, str, str]]:
    """(index, name, session id) of every replica that may be live: those recorded with a
    session and not ended, and those the record has not tied to a session yet whose session
    the service lists under the replica's name."""
    found = [
        (r.index, r.name, r.session_id) for r in run.replicas if r.session_id and not r.is_ended
    ]
    unrecorded = [r for r in run.replicas if awaiting_adoption(r)]
    if unrecorded:
        listed = {s.id: s for s in await client.list_sessions()}
        for replica in unrecorded:
            session = adopt_by_name(run, replica, listed)
            if session is not None:
                found.append((replica.index, replica.name, session.id))
    return sorted(found)


async def _renew_one(
    client: SkahaClient, index: int, name: str, session_id: str, hours: float | None
) -> RenewedReplica:
    report = RenewedReplica(index=index, name=name, session_id=session_id, outcome="failed")
    try:
        before = await client.get_session(session_id)
        report.expiry_before = report.expiry = before.expiry_time
        if not before.status.is_active:
            report.outcome, report.note = "skipped", "ended"
            return report
        left = _hours_left(before.expiry_time)
        if hours is not None and left is not None and left >= hours:
            report.outcome, report.note = "skipped", f"{left:.0f} h left already"
            return report
        await client.renew(session_id)
        after = await client.get_session(session_id)
    except NotFound:
        report.outcome, report.note = "skipped", "ended"
        return report
    except SkahaError as error:
        report.note = error.message
        return report
    report.expiry = after.expiry_time
    # Skaha resets the deadline to elapsed + period each time, so a renew repeated soon after
    # moves it by seconds: that is no renewal worth the name.
    moved = after.expiry_time is not None and (
        report.expiry_before is None
        or (after.expiry_time - report.expiry_before).total_seconds() >= MIN_GAIN
    )
    report.outcome = "renewed" if moved else "unchanged"
    left = _hours_left(after.expiry_time)
    if not moved and left is not None:
        report.note = f"its deadline is already {_span(left)} away; {NOT_NEAR}"
    if hours is not None and left is not None and left < hours:
        more = f"{left:.0f} h left, less than the {hours:g} h asked: the service gives no more"
        report.note = f"{report.note}; {more}" if report.note else more
    return report


def _hours_left(expiry: datetime | None) -> float | None:
    if expiry is None:
        return None
    return (expiry - datetime.now(timezone.utc)).total_seconds() / 3600


def _span(hours: float) -> str:
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def _shown(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
