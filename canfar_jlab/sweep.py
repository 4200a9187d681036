"""Parameter sweeps: one set of parameter values per replica.

A sweep comes from lists of values (``-p sigma=3,4,5``; in a launch body, list values with
``"sweep": true``) or from a file of rows (``--sweep rows.csv`` or ``rows.json``). Replica i
gets row i-1 over the run's fixed parameters; the rows are written to the run folder's
``sweep.json`` and recorded in run.json (``spec.sweep``).

- Several lists make a grid: every combination, the first parameter varying slowest
  (``-p a=1,2 -p b=x,y`` gives (1,x) (1,y) (2,x) (2,y)), as a loop nest reads.
- A CSV file has a header row of parameter names; each value is read as JSON when it reads as
  JSON (``3``, ``1.5``, ``true``), else as text. A JSON file holds a list of objects.
- The number of rows sets the number of replicas unless the launch gives one; asking for more
  replicas than rows is refused (a replica without values would run the defaults silently).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path
from typing import Any

from .errors import InvalidInput

MAX_ROWS = 10_000  # more than MAX_REPLICAS: a file may hold more rows than one run uses


class SweepError(InvalidInput):
    """A sweep that cannot be used, described in one line."""


def value_of(text: str) -> Any:
    """A value typed by a person: JSON when it reads as JSON, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def grid(parameters: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """(fixed parameters, rows): list-valued parameters swept as a grid; rows None if none."""
    fixed = {name: value for name, value in parameters.items() if not isinstance(value, list)}
    swept = {name: value for name, value in parameters.items() if isinstance(value, list)}
    if not swept:
        return fixed, None
    for name, values in swept.items():
        if not values:
            raise SweepError(f"parameter {name!r}: a sweep needs at least one value")
    size = 1
    for values in swept.values():
        size *= len(values)
    if size > MAX_ROWS:
        raise SweepError(f"the sweep makes {size} combinations; at most {MAX_ROWS}")
    names = list(swept)
    rows = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*swept.values())]
    return fixed, rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a .csv or .json sweep file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise SweepError(f"cannot read the sweep file {path}: {error}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            rows = json.loads(text)
        except ValueError as error:
            raise SweepError(f"{path.name} is not JSON: {error}") from None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise SweepError(f"{path.name} must hold a list of objects, one per replica")
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or any(not (name or "").strip() for name in reader.fieldnames):
            raise SweepError(f"{path.name} needs a header row naming every column")
        rows = []
        for number, record in enumerate(reader, start=2):
            if None in record or any(value is None for value in record.values()):
                raise SweepError(f"{path.name}, line {number}: not as many values as names")
            rows.append({name.strip(): value_of(value.strip()) for name, value in record.items()})
    else:
        raise SweepError(f"a sweep file is .csv or .json, not {path.name}")
    if not rows:
        raise SweepError(f"{path.name} has no rows")
    if len(rows) > MAX_ROWS:
        raise SweepError(f"{path.name} has {len(rows)} rows; at most {MAX_ROWS}")
    return rows


def plan(
    parameters: dict[str, Any], sweep: bool, rows: list[dict[str, Any]] | None
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """(fixed parameters, rows or None) for a launch: given rows, or the grid of lists."""
    if rows:
        if sweep and any(isinstance(value, list) for value in parameters.values()):
            raise SweepError("give a sweep as lists of values or as rows, not both")
        if len(rows) > MAX_ROWS:
            raise SweepError(f"the sweep has {len(rows)} rows; at most {MAX_ROWS}")
        clash = sorted(set(parameters) & set().union(*rows))
        if clash:
            raise SweepError(f"{', '.join(clash)} set both by -p and by the sweep rows")
        return dict(parameters), rows
    if sweep:
        return grid(parameters)
    return dict(parameters), None
