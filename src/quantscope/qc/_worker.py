"""The measuring process of ingest's quality control: :func:`best_plane_metrics
<quantscope.quality.best_plane_metrics>` of planes that the parent process has put in shared
memory, computed away from the parent's interpreter lock. Not exported: only
:class:`quantscope.qc.MeasuringProcess` starts it.

Started by :class:`~quantscope.qc.MeasuringProcess` as ``python -P .../qc/_worker.py FD`` (run
as a script, so that the child imports :mod:`quantscope.quality` and not the whole
:mod:`quantscope.qc` package: about 0.4 s less to start), where ``FD`` is this process's end of
a ``SOCK_SEQPACKET`` Unix socket pair. Every message
is one pickled tuple (the two processes are one program: the same interpreter and the same
quantscope, over a private socket pair).

From the parent:

* ``("slot", slot, nbytes)`` with one file descriptor (a ``memfd``) attached: map it as buffer
  ``slot``;
* ``("drop", slot)``: unmap buffer ``slot``;
* ``("measure", request, slot, shape, dtype, bits)``: measure the ``(C, Z, Y, X)`` array of
  ``dtype`` at the start of buffer ``slot``, each channel with
  :func:`~quantscope.quality.best_plane_metrics` and ``significant_bits=bits``.

To the parent: ``("ready", pid)`` once, then ``("done", request, metrics, error, seconds)`` for
every ``measure`` in order (``metrics`` is ``{channel: {name: value}}``, or None with ``error``
the exception's text), and ``("fatal", text)`` before exiting on anything else. End of file on
the socket (the parent closed it, or died) ends the process.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import pickle
import socket
import sys
import time
import traceback
from typing import Any

import numpy as np

from quantscope.quality import best_plane_metrics  # absolute: also run as a script

_MAX_MESSAGE = 1 << 16  # what the parent sends: small tuples


def _measure(
    buf: mmap.mmap, shape: tuple[int, int, int, int], dtype: str, bits: int | None
) -> dict[int, dict[str, float]]:
    count = int(np.prod(shape))
    planes = np.frombuffer(buf, dtype=np.dtype(dtype), count=count).reshape(shape)
    try:
        return {
            c: best_plane_metrics(
                planes[c, 0] if shape[1] == 1 else planes[c], significant_bits=bits
            )
            for c in range(shape[0])
        }
    finally:
        del planes  # no view may outlive the buffer (a mapped buffer with views cannot close)


def serve(sock: socket.socket) -> None:
    """Answer the parent's messages on ``sock`` until it closes its end."""
    import scipy.fft  # noqa: F401  (imported by the first measurement otherwise: 0.15-0.2 s)

    slots: dict[int, mmap.mmap] = {}
    sock.send(pickle.dumps(("ready", os.getpid())))
    try:
        while True:
            data, fds, flags, _ = socket.recv_fds(sock, _MAX_MESSAGE, 1)
            if not data:
                return  # the parent closed the socket
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise RuntimeError(f"message truncated (flags {flags:#x})")
            msg: tuple[Any, ...] = pickle.loads(data)
            kind = msg[0]
            if kind == "slot":
                _, slot, nbytes = msg
                (fd,) = fds
                try:
                    slots[slot] = mmap.mmap(fd, nbytes)
                finally:
                    os.close(fd)
            elif kind == "drop":
                buf = slots.pop(msg[1], None)
                if buf is not None:
                    buf.close()
            elif kind == "measure":
                _, request, slot, shape, dtype, bits = msg
                t0 = time.perf_counter()
                metrics: dict[int, dict[str, float]] | None = None
                error: str | None = None
                try:
                    metrics = _measure(slots[slot], shape, dtype, bits)
                except Exception as e:  # reported to the parent, which decides
                    error = f"{type(e).__name__}: {e}"
                reply = pickle.dumps(("done", request, metrics, error, time.perf_counter() - t0))
                try:
                    sock.send(reply)
                except OSError as e:  # too large for one message: the parent measures it
                    if e.errno != errno.EMSGSIZE:
                        raise
                    sock.send(pickle.dumps(("done", request, None, f"reply not sent: {e}", 0.0)))
            else:
                raise RuntimeError(f"unknown message {kind!r}")
    finally:
        for buf in slots.values():
            buf.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -P path/to/qc/_worker.py FD``."""
    args = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(args[0]))
    try:
        serve(sock)
    except BaseException:  # tell the parent why, then exit (it falls back to measuring itself)
        with contextlib.suppress(OSError):
            sock.send(pickle.dumps(("fatal", traceback.format_exc()[-4000:])))
        return 1
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
