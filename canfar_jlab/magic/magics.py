"""The `%canfar` line magic and `%%canfar` cell magic (IPython `Magics` class).

This module parses the line, runs the verb's coroutine on the private loop, shows the result,
and turns every failure into one line on stderr: a magic never shows a traceback for a bad id,
a refused launch or an unreachable service.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display
from pydantic import ValidationError
from traitlets import Float, Unicode

from ..errors import CanfarError, LaunchRefused, SkahaError
from ..models import Run, explain
from ..runs import RunStore, default_root
from ..skaha import SkahaClient
from . import verbs, views
from .cell import cell_stem, current_notebook, definitions, write_cell_notebook
from .loop import BackgroundLoop, Emit, Interrupted
from .options import (
    VERBS,
    HelpShown,
    UsageError,
    build_parsers,
    split_command,
    split_line,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Set in every replica (by canfar_jlab.runs, and by Skaha for any replica): a notebook run as
# a batch replica must not launch runs itself, nor wait for its own run to end.
REPLICA_MARKERS = ("CANFAR_RUN_NAME", "REPLICA_ID")
_FINISHING = "interrupt noted: finishing first (sessions are never left half-created)\n"


@magics_class
class CanfarMagics(Magics):
    """Launch, watch and manage batch work on CANFAR or the local engine from a notebook."""

    poll_interval = Float(
        1.0, help="Seconds between polls of the session service while following logs."
    ).tag(config=True)
    runs_root = Unicode(
        "",
        help="Runs folder (default: $CANFAR_JLAB_RUNS, else `canfar-jlab config set "
        "runs-root`, else ~/canfar-runs).",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        # `parent` makes `%config CanfarMagics.poll_interval = 0.5` reach this instance.
        super().__init__(shell=shell, parent=shell, **kwargs)
        self._loop = BackgroundLoop()
        self._parsers = build_parsers()
        self._stores: dict[str, RunStore] = {}

    @line_cell_magic
    def canfar(self, line: str, cell: str | None = None) -> None:
        """Run notebooks, cells and commands as batch replicas on CANFAR or the local engine.

        %load_ext canfar_jlab     registers %canfar and %%canfar

        Line verbs (%canfar VERB -h shows a verb's options):

          %canfar batch [NOTEBOOK] [-r N] [options] [-p K=V]... [-f]
              Run a notebook as N replicas (a *run*): this kernel's notebook as last SAVED
              (found from the kernel: VS Code's __vsc_ipynb_file__, __session__ or
              JPY_SESSION_NAME), or NOTEBOOK. -p overrides the cell tagged `parameters`.
          %canfar run [-r N] [options] -- CMD ARGS
              Run any command as N sessions named NAME-1..NAME-N (no run folder: follow
              them with %canfar logs ID). Arguments cannot contain spaces (Skaha splits them).
          %canfar ps [RUN] [--all]         runs and sessions (active ones unless --all);
                                           with RUN, that run's replicas
          %canfar logs RUN_OR_SESSION [-i N] [-f]
              A run's logs (all replicas, or replica N; `RUN-N` works too) or a session's.
              -f: lines appear in the cell as they come, until every replica has ended or
              the cell is interrupted (the replicas keep running).
          %canfar stats                    the platform's load
          %canfar events RUN_OR_SESSION    scheduling events
          %canfar stop RUN...              stop a run's replicas (or one: RUN-3); record and
                                           logs stay (state "stopped")
          %canfar delete RUN_OR_SESSION... delete a run's sessions (its folder stays) or sessions
          %canfar rerun RUN --failed|--more-memory [--from-notebook] [-f]
              run only the failed replicas again (same REPLICA_ID), from the launch
              snapshot, or from the notebook as saved now with --from-notebook;
              --more-memory: those that ran out of memory, with twice their peak RAM
          Wherever a run is expected, a replica name (RUN-3) or a session id works too.
          %canfar rerun RUN --failed [-f]  run only the failed replicas again (same REPLICA_ID)
          %canfar renew RUN [--hours H]    extend the deadline of the run's live replicas
          %canfar images                   images sessions can use
          %canfar context                  cores, RAM and GPUs a session may ask for

        Launch options, as in the canfar-jlab CLI: -r/--replicas N, --image IMAGE, --cores C,
        --ram GB, --gpus G, -e/--env K=V (repeatable), --name NAME, --site NAME (a server
        of ~/.canfar/config.yaml; the run keeps it for every later action). Empty cores and RAM mean
        flexible resources; OMP_NUM_THREADS is set to --cores. Each replica gets REPLICA_ID
        (1..N) and REPLICA_COUNT, and for runs CANFAR_RUN_DIR and CANFAR_RUN_OUTPUTS.

        Cell magic:

          %%canfar [-r N] [options] [--setup] [-f]
          <code>

        The cell's code becomes a batch run of N replicas (named after this notebook plus
        `-cell`). What goes with it: the cell alone, run in this kernel's working directory
        (relative paths and local modules resolve as here). With --setup (alias
        --with-history) it is preceded by the definitions run so far in this kernel: its
        imports, def/class statements and assignments of literal values (numbers, strings,
        lists/dicts of them), in order. Nothing else from earlier cells travels: not
        variables computed here, not other statements, not magics (so no earlier %canfar
        launch is repeated). Compute what the cell needs inside it, or pass values with -e.
        The cell is not run in this kernel.

        Runs go to the same runs folder and session service as the JupyterLab sidebar and
        the canfar-jlab CLI (credentials from CANFAR_URL/CANFAR_TOKEN, ~/.canfar/config.yaml,
        ~/.ssl/cadcproxy.pem, else the local engine, started on demand). Results show as
        tables in a notebook and as text elsewhere; failures as one line on stderr. Inside
        a batch replica %canfar does nothing (a replica never launches runs itself).
        """
        try:
            self._dispatch(line, cell)
        except HelpShown:
            pass
        except Interrupted as stop:
            # Work that is never cancelled half-way (creating sessions) finished: show it.
            done = stop.result[0] if isinstance(stop.result, tuple) else stop.result
            if isinstance(done, (views.Report, views.Table, views.Note)):
                self._show(done)
                self._note("interrupted once that was done")
            else:
                self._note("interrupted")
        except BaseException as error:  # KeyboardInterrupt too: one line
            message = _one_line_error(error)
            if message is None:
                raise
            self._error(message)

    # ---------------------------------------------------------------- dispatch

    def _dispatch(self, line: str, cell: str | None) -> None:
        if _in_replica():
            what = "%%canfar cell" if cell is not None else f"%canfar {line.strip()}"
            self._note(f"canfar: skipped inside a batch replica: {what}"[:200])
            return
        tokens = split_line(line)
        if cell is not None:
            self._cell(self._parsers["cell"].parse_args(tokens), cell)
            return
        if not tokens or tokens[0] in ("help", "-h", "--help"):
            self._help(tokens[1:] if tokens else [])
            return
        verb, rest = tokens[0], tokens[1:]
        if verb not in VERBS:
            raise UsageError(f"unknown verb {verb!r}; one of {', '.join(VERBS)} (see %canfar?)")
        if verb == "run" and {"-h", "--help"} & set(rest) and "--" not in rest:
            self._parsers["run"].print_help()
            return
        if verb == "run":
            options, command = split_command(rest)
            self._run(self._parsers["run"].parse_args(options), command)
            return
        args = self._parsers[verb].parse_args(rest)
        getattr(self, f"_{verb}")(args)

    def _help(self, topics: list[str]) -> None:
        if topics and topics[0] in self._parsers:
            self._parsers[topics[0]].print_help()
        else:
            print(_dedent(self.canfar.__doc__ or ""))

    # ---------------------------------------------------------------- launching verbs

    def _batch(self, args: Any) -> None:
        if args.notebook:
            notebook = Path(args.notebook).expanduser()
        else:
            notebook = current_notebook(self.shell.user_ns, os.environ, Path.cwd())
        self._launch(
            lambda client, store: verbs.launch_notebook(notebook, args, client, store),
            follow=args.follow,
        )

    def _cell(self, args: Any, source: str) -> None:
        if not source.strip():
            raise UsageError("%%canfar: the cell is empty")
        setup = definitions(self._earlier_inputs()) if args.setup else ""
        try:
            here: Path | None = current_notebook(self.shell.user_ns, os.environ, Path.cwd())
        except UsageError:
            here = None
        notebook = write_cell_notebook(source, cwd=Path.cwd(), setup=setup, stem=cell_stem(here))

        async def start(client: SkahaClient, store: RunStore) -> Run:
            try:
                return await verbs.launch_notebook(notebook.path, args, client, store)
            except BaseException as error:  # nothing was launched: the notebook is not needed
                notebook.remove()
                if not isinstance(error, LaunchRefused) or not error.problems:
                    raise
                shown = [notebook.explain(problem) for problem in error.problems]
                if len(shown) == 1:
                    raise UsageError(f"cannot run this cell as batch: {shown[0]}") from None
                raise _Listed(  # one line each (issue 12)
                    f"cannot run this cell as batch ({len(shown)} problems):", shown
                ) from None

        self._launch(start, follow=args.follow)

    def _earlier_inputs(self) -> list[str]:
        """The cells run before this one (IPython stores a cell's input before running it)."""
        history = self.shell.history_manager.input_hist_raw
        return list(history[1 : self.shell.execution_count])

    def _rerun(self, args: Any) -> None:
        if not (args.failed or args.more_memory):
            raise UsageError(
                "%canfar rerun: add --failed or --more-memory (which replicas to run again)"
            )
        store = self._store()

        source = "notebook" if args.from_notebook else "snapshot"

        async def work(emit: Emit) -> tuple[views.Report, list[int], str]:
            async def inner(client: SkahaClient) -> tuple[views.Report, list[int], str]:
                run, indices = await verbs.rerun(
                    args.run, client, store, emit, source=source, more_memory=args.more_memory
                )
                report = verbs.relaunched(run, indices, client, following=args.follow)
                return report, indices, run.name

            return await verbs.with_client(inner)

        report, indices, name = self._call(work, cancellable=False)
        self._show(report)
        if args.follow:
            self._follow(name, indices)

    def _renew(self, args: Any) -> None:
        from ..runs.renew import renew_run
        from ..runs.sites import run_client

        run = self._store().get(args.run)

        async def work(emit: Emit) -> views.Note:
            async with run_client(run) as client:
                report = await renew_run(run, client, args.hours)
            return views.Note("\n".join([f"run {report.run}:", *report.lines()]))

        self._show(self._call(work, cancellable=False))

    def _launch(
        self, start: Callable[[SkahaClient, RunStore], Awaitable[Run]], *, follow: bool
    ) -> None:
        """Launch (never cancelled half-way: a launch interrupted still completes and is
        recorded), show the run, then follow it if asked."""
        store = self._store()

        async def work(emit: Emit) -> tuple[views.Report, str]:
            async def inner(client: SkahaClient) -> tuple[views.Report, str]:
                run = await start(client, store)
                return verbs.launched(run, client, following=follow), run.name

            return await verbs.with_client(inner)

        report, name = self._call(work, cancellable=False)
        self._show(report)
        if follow:
            self._follow(name)

    def _run(self, args: Any, command: list[str]) -> None:
        self._show(
            self._with_client(
                lambda client, store, emit: verbs.run_command(command, args, client),
                cancellable=False,
            )
        )

    # ---------------------------------------------------------------- watching

    def _follow(self, name: str, indices: list[int] | None = None) -> None:
        store = self._store()

        async def work(emit: Emit) -> Run:
            return await verbs.with_client(
                lambda client: verbs.follow(
                    name, client, store, emit, interval=self.poll_interval, indices=indices
                )
            )

        try:
            run = self._call(work)
        except Interrupted:
            self._note(
                f"interrupted: stopped following run {name}; its replicas keep running "
                f"(%canfar delete {name} stops them)"
            )
            return
        self._show(verbs.ended(run))

    def _logs(self, args: Any) -> None:
        store = self._store()
        followed: dict[str, str] = {}

        async def work(emit: Emit) -> Run | None:
            async def inner(client: SkahaClient) -> Run | None:
                target = await verbs.find_target(args.target, client, store)
                if args.replica is not None and target.run is None:
                    raise UsageError(f"-i/--replica needs a run, and {args.target!r} is a session")
                if not args.follow:
                    await verbs.logs(target, client, store, emit, args.replica)
                    return None
                if target.session is not None:
                    followed["what"] = f"session {target.session.id}"
                    async for text in client.tail(
                        target.session.id, poll_interval=self.poll_interval
                    ):
                        emit(text)
                    return None
                assert target.run is not None
                followed["what"] = f"run {target.run.name}"
                index = args.replica or target.index
                return await verbs.follow(
                    target.run.name,
                    client,
                    store,
                    emit,
                    interval=self.poll_interval,
                    indices=[index] if index else None,
                )

            return await verbs.with_client(inner)

        try:
            run = self._call(work)
        except Interrupted:
            what = followed.get("what", args.target)
            self._note(f"interrupted: stopped following {what}; it keeps running")
            return
        if run is not None:
            self._show(verbs.ended(run))

    # ---------------------------------------------------------------- reading verbs

    def _ps(self, args: Any) -> None:
        self._show(self._with_client(lambda client, store, emit: verbs.ps(args, client, store)))

    def _stats(self, args: Any) -> None:
        self._show(
            self._with_client(
                lambda client, store, emit: _then(client.platform_load(), views.stats_table)
            )
        )

    def _images(self, args: Any) -> None:
        self._show(
            self._with_client(
                lambda client, store, emit: _then(client.images(args.type), views.images_table)
            )
        )

    def _context(self, args: Any) -> None:
        self._show(
            self._with_client(
                lambda client, store, emit: _then(client.context(), views.context_table)
            )
        )

    def _events(self, args: Any) -> None:
        async def events(client: SkahaClient, store: RunStore, emit: Emit) -> None:
            target = await verbs.find_target(args.target, client, store)
            await verbs.events(target, client, store, emit)

        self._with_client(events)

    def _stop(self, args: Any) -> None:
        self._show(
            self._with_client(
                lambda client, store, emit: verbs.stop(args.targets, client, store),
                cancellable=False,
            )
        )

    def _delete(self, args: Any) -> None:
        self._show(
            self._with_client(
                lambda client, store, emit: verbs.delete(args.targets, client, store),
                cancellable=False,
            )
        )

    # ---------------------------------------------------------------- plumbing

    def _with_client(
        self,
        work: Callable[[SkahaClient, RunStore, Emit], Awaitable[T]],
        *,
        cancellable: bool = True,
    ) -> T:
        store = self._store()

        async def run(emit: Emit) -> T:
            return await verbs.with_client(lambda client: work(client, store, emit))

        return self._call(run, cancellable=cancellable)

    def _call(self, work: Callable[[Emit], Awaitable[T]], *, cancellable: bool = True) -> T:
        return self._loop.call(work, self._show, cancellable=cancellable, finishing_note=_FINISHING)

    def _store(self) -> RunStore:
        # The configured root (CanfarMagics.runs_root), else the one every door reads.
        root = str(Path(self.runs_root).expanduser() if self.runs_root else default_root())
        store = self._stores.get(root)
        if store is None:
            store = self._stores[root] = RunStore(root)
        return store

    def _show(self, item: object) -> None:
        if item is None:
            return
        if isinstance(item, str):
            sys.stdout.write(item)
            sys.stdout.flush()
        else:
            display(item)

    def _note(self, text: str) -> None:
        print(text)

    def _error(self, message: str) -> None:
        print(f"canfar: {message}", file=sys.stderr)


async def _then(pending: Awaitable[Any], view: Callable[[Any], Any]) -> Any:
    return view(await pending)


def _in_replica() -> bool:
    return any(os.environ.get(name) for name in REPLICA_MARKERS)


class _Listed(UsageError):
    """A refusal shown as a headline then one line per problem."""

    def __init__(self, headline: str, lines: list[str]) -> None:
        super().__init__(headline)
        self.headline, self.lines = headline, lines


def _one_line_error(error: BaseException) -> str | None:
    """The one line a user sees for `error`, or None for what must propagate (SystemExit)."""
    if isinstance(error, SkahaError):
        return error.message
    if isinstance(error, ValidationError):
        return explain(error)
    if isinstance(error, LaunchRefused) and len(error.problems) > 1:
        head, *problems = error.lines()  # one line per problem (issue 12)
        return "\n".join([_flat(head), *(f"  {_flat(line)}" for line in problems)])
    if isinstance(error, _Listed):
        return "\n".join([_flat(error.headline), *(f"  {_flat(line)}" for line in error.lines)])
    if isinstance(error, (CanfarError, ValueError)):
        return _flat(str(error))
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or error}{where}"
    if isinstance(error, Exception):
        log.debug("unexpected error in %%canfar", exc_info=error)
        return _flat(f"unexpected {type(error).__name__}: {error}")
    return None


def _flat(text: str) -> str:
    return " ".join(text.split())[:500]


def _dedent(text: str) -> str:
    import inspect

    return inspect.cleandoc(text)
