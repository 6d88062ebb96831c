"""Small file helpers every layer may import (no dependencies): an atomic write, and who is
running quantscope (for audit and provenance records)."""

from __future__ import annotations

import contextlib
import getpass
import os
import uuid
from pathlib import Path

__all__ = ["atomic_write", "user_name"]


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically: a reader sees the old content or the new,
    never a part. The temporary file (``.<name>.tmp-<pid>-<random>``, beside the target) is
    removed if the write fails; leftover-cleanup rules match it as ``.*.tmp*``.

    ``durable`` flushes the data to disk (fsync) before the rename, for files a crash must not
    leave empty (journals, edited metadata).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as fh:
            fh.write(raw)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def user_name() -> str:
    """The login name of the user running quantscope ("unknown" where there is none, as in
    containers without a passwd entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"
