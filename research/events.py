"""Study events in words: one readable line per event, for `research log` and reports."""

from __future__ import annotations

import json
from typing import Any


def describe(event: dict[str, Any]) -> str:
    """One readable line for an event."""
    d, kind = event["data"], event["kind"]
    metrics = d.get("metrics") or d.get("after") or {}
    if kind == "segment":
        state = "diverged" if d.get("diverged") else f"val loss {metrics.get('val_loss', float('nan')):.4f}, val acc {metrics.get('val_acc', float('nan')):.4f}"
        return f"segment {d['segment']} ended at epoch {d['epoch']}: {state}"
    if kind == "change":
        return f"{d['name']} {d['old']} -> {d['new']} at epoch {d['epoch']} ({d['reason']})"
    if kind == "outcome":
        verdict = "kept" if d["kept"] else "undone"
        before, after = d.get("before") or {}, d.get("after") or {}
        return (f"{d['name']} change {verdict}: val loss {before.get('val_loss', float('nan')):.4f} -> "
                f"{after.get('val_loss', float('nan')):.4f}")
    if kind == "rollback":
        return f"rolled back from epoch {d['from_epoch']} to {d['to_epoch']} ({d['reason']})"
    if kind == "refused":
        return f"refused {d['action']} {d.get('name') or ''}: {d['reason']}"
    if kind == "command":
        return f"command {d['action']} {d.get('name', '')}{'=' + d['value'] if 'value' in d else ''} received"
    if kind == "stop":
        return f"stopped at epoch {d['epoch']} ({d['source']})"
    if kind == "resume":
        return f"resumed at epoch {d['epoch']}"
    if kind == "end":
        return f"ended {d['status']} at epoch {d['epoch']}" + (" (stopped)" if d.get("stopped") else "")
    return f"{kind} {json.dumps(d)}"
