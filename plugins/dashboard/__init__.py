"""Built-in plugin ``dashboard``: ``research dashboard``, a live web view of a store's
studies, read-only unless started with ``--allow-control``.

It needs the ``dashboard`` extra (``pip install 'research-hparams[dashboard]'``: Starlette,
uvicorn and plotly, whose plotly.js draws the charts). Its parts: ``command`` (the command,
the token, the server), ``app`` (routes, the token check, controls), ``views`` (what each page
shows, read from the store) and ``static/`` (the page script and style sheet).
"""

from research_plugins.dashboard.command import register_commands

__all__ = ["register_commands"]
