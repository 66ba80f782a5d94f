"""Reading the JSON documents the tools exchange (profiles, acceptance models, reports) with
one-line errors naming the file: missing, a directory, unreadable, empty, or not JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim.errors import InputError


def read_json_file(path: str | Path, what: str) -> Any:
    """Parse ``path``; ``what`` names the document in errors ("latency profile", ...)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} not found", path=str(p)) from None
    except IsADirectoryError:
        raise InputError(f"{what} is a directory, expected a JSON file", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} ({exc.__class__.__name__})", path=str(p)) from None
    if not text.strip():
        raise InputError(f"{what} is empty", path=str(p))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON, truncated? ({exc.msg})", path=str(p),
                         line=exc.lineno) from None
