"""``research dashboard``: serve the live web view of a store and print its URL.

The app and its dependencies are imported only when the command runs, so a missing extra is
one line naming it, and ``research --help`` costs nothing more.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import threading
from pathlib import Path
from typing import Annotated

import typer

from research import hookimpl
from research.cli.console import Terminal, terminal
from research.defaults import STORE
from research.errors import UsageError
from research.extras import install_command

NEEDED = ("starlette", "uvicorn", "plotly")


def check_installed() -> None:
    """A UsageError naming the extra when a package the dashboard needs is missing."""
    import importlib.util

    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"research dashboard needs {', '.join(missing)}: install the extra with "
                         f"{install_command('dashboard')}")


def loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: any free port), or a UsageError saying why not."""
    if not host.strip():  # the socket would listen on every interface, and the printed address be unusable
        raise UsageError("--host is empty; pass an address of this machine (127.0.0.1: this machine only, "
                         "0.0.0.0: every interface)")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named: asyncio then turns Nagle's algorithm off on each connection (with
        # protocol 0 it does not, and every answer after a connection's first waited ~40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # accepting from now on: the URL printed next already answers
    except socket.gaierror as err:  # the name, not the port
        raise UsageError(f"cannot listen on {host}:{port}: no address of this machine is named '{host}' "
                         f"({err.strerror or err}); pass --host with an address of this machine (127.0.0.1: "
                         "this machine only)") from None
    except OSError as err:
        if err.errno == errno.EADDRNOTAVAIL:  # a valid address, but another machine's
            raise UsageError(f"cannot listen on {host}:{port}: {host} is not an address of this machine "
                             f"({err.strerror or err}); pass --host with one of its addresses (127.0.0.1: this "
                             "machine only)") from None
        raise UsageError(f"cannot listen on {host}:{port} ({err.strerror or err}); pass another --port "
                         f"(0 picks a free one) or --host") from None
    return sock


def url_of(host: str, port: int, token: str) -> str:
    """The address to open: for every interface (0.0.0.0, ::), by this machine's name, which
    another machine can use where ``http://0.0.0.0`` means nothing."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:
            host = socket.gethostname()
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def serve(term: Terminal, store: Path, host: str, port: int, allow_control: bool) -> None:
    """Run the dashboard until Ctrl-C."""
    check_installed()
    import uvicorn
    from research_plugins.dashboard.app import Dashboard, make_app
    from research_plugins.dashboard.views import store_problem

    dashboard = Dashboard(store, term.plugins, allow_control=allow_control)
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    if not loopback(host):
        term.err.print(f"warning: listening on {host}, not only this machine: anyone who can reach it and has "
                       f"the token can read every study{' and steer them' if allow_control else ''}",
                       highlight=False, markup=False, soft_wrap=True)
    problem = store_problem(dashboard.store)
    if problem is not None:
        term.err.print(f"warning: {problem} (the pages say so until it can be read)", highlight=False,
                       markup=False, soft_wrap=True)
    term.warn_problems()
    control = "; controls on (--allow-control)" if allow_control else ""
    term.out.print(f"research dashboard of {store}{control}: open\n{url_of(host, bound, dashboard.token)}\n"
                   "Ctrl-C stops it", highlight=False, markup=False, soft_wrap=True)
    threading.Thread(target=dashboard.prepare, name="prepare views", daemon=True).start()
    config = uvicorn.Config(make_app(dashboard), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


@hookimpl
def register_commands(cli: typer.Typer) -> None:
    """Add ``research dashboard``."""

    @cli.command()
    def dashboard(
        ctx: typer.Context,
        store: Annotated[Path, typer.Option("--store", help="The SQLite store file.")] = Path(STORE),
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The port (0: any free one).")] = 8080,
        host: Annotated[str, typer.Option("--host", help="The address to listen on; another than this "
                                                         "machine's own is warned about.")] = "127.0.0.1",
        allow_control: Annotated[bool, typer.Option("--allow-control", help="Offer the studies' controls "
                                                    "(babysit's set, rollback, stop).")] = False,
    ) -> None:
        """Watch the store's studies live in a web browser (needs the dashboard extra)."""
        serve(terminal(ctx), store, host, port, allow_control)
