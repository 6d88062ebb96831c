"""A measuring process for ingest's quality control, away from the interpreter lock.

Ingest measures each image's QC planes while its writer threads go on. Measured on a thread of
the writing process, the metrics compete with the writers for the interpreter lock: every numpy
call on a large array releases the lock and must win it back, and a thread waiting for the lock
waits up to the switch interval (5 ms) while another runs Python. ``channel_metrics`` of one
520 x 696 plane takes 2.2 ms alone and 310 ms beside one thread that only runs Python (the
convoy effect); during a two-writer ingest of the BBBC039 TIFFs a QC thread needed about 7 ms
per image, more than the writers, and set the pace of the whole ingest.

:class:`MeasuringProcess` is a Python process of the same interpreter that measures planes the
writers put straight into shared memory (one ``memfd`` buffer per image in flight, reused).
Per image the parent sends one small message and gets one back; the measuring itself uses the
other core. Ingest starts it once the Python process has had :data:`START_AFTER_IMAGES`
images measured (its start costs more than a small one-off ingest gains) and it is kept for
the life of the process (:func:`shared_process`), so later ingests in a long-running process
(the server, a notebook, a test run) find it ready. Until it is ready, or if it cannot start or
dies, ingest measures on its own thread as before; the values are the same (one code path,
:func:`best_plane_metrics <quantscope.quality.best_plane_metrics>`, in both).

Linux only (``memfd_create`` and ``SOCK_SEQPACKET``): elsewhere, or with the environment
variable ``QUANTSCOPE_QC_PROCESS=0``, QC measures on a thread. The child's protocol is
described in :mod:`quantscope.qc._worker`.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import mmap
import os
import pickle
import socket
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "START_AFTER_IMAGES",
    "MeasuringProcess",
    "Outcome",
    "process_for_ingest",
    "running_process",
    "shared_process",
]

_log = logging.getLogger(__name__)

#: The measuring process's program (:mod:`quantscope.qc._worker`), run as a script with ``-P``
#: (the script's folder not on ``sys.path``): it imports :mod:`quantscope.quality` only.
_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")

#: ``(metrics, error, seconds)`` of one request: ``{channel: {name: value}}`` and None, or None
#: and why the process could not measure (then the caller measures itself).
Outcome = tuple[dict[int, dict[str, float]] | None, str | None, float]

_KEEP_SLOTS = 8  # free buffers kept for reuse
_KEEP_BYTES = 16 * 2**20  # larger buffers are not kept
_MIN_SLOT = 1 << 20
_MAX_STARTS = 3  # processes started per parent process (a crashing child is not restarted forever)
_ENV_SWITCH = "QUANTSCOPE_QC_PROCESS"


@dataclass(eq=False)
class Slot:
    """One shared buffer: ``nbytes`` of a ``memfd`` mapped here (and, once sent, in the child)."""

    id: int
    nbytes: int
    buf: mmap.mmap
    fd: int | None  # open until handed to the child


def supported() -> bool:
    """Whether this platform has what :class:`MeasuringProcess` needs and it is not switched off."""
    if os.environ.get(_ENV_SWITCH, "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "memfd_create")
        and hasattr(socket, "SOCK_SEQPACKET")
        and hasattr(socket, "send_fds")
        and bool(sys.executable)
    )


class MeasuringProcess:
    """A child process that measures ``(C, Z, Y, X)`` QC planes placed in shared buffers.

    Thread-safe: writer threads take buffers (:meth:`slot`, :meth:`array`), fill them and send
    them (:meth:`measure`); a reader thread of this object completes the futures. Use
    :func:`shared_process` rather than creating one.

    Raises
    ------
    OSError
        The process or its socket could not be created.
    """

    def __init__(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            env = dict(os.environ)
            # the same quantscope as this process (a source tree on sys.path included)
            paths = [p for p in sys.path if p]
            if env.get("PYTHONPATH"):
                paths.append(env["PYTHONPATH"])
            env["PYTHONPATH"] = os.pathsep.join(paths)
            self._proc = subprocess.Popen(
                [sys.executable, "-P", _WORKER, str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C reaches the parent only; the child ends on EOF
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self._sock = parent
        self.pid = os.getpid()  # the process that owns this object (not a forked copy)
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[Outcome]] = {}
        self._requests = itertools.count()
        self._slot_ids = itertools.count()
        self._free: list[Slot] = []
        self._dead: str | None = None
        self._reader = threading.Thread(
            target=self._read, name="quantscope-qc-process", daemon=True
        )
        self._reader.start()

    # -------------------------------------------------------------------------------- state
    @property
    def ready(self) -> bool:
        """The child has started and is alive: :meth:`measure` sends to it."""
        return self._ready.is_set() and self._dead is None

    @property
    def dead(self) -> str | None:
        """Why the child is gone (None while it may still serve)."""
        return self._dead

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the child has used so far, from ``/proc``; None when it
        cannot be read (the child is gone)."""
        try:
            with open(f"/proc/{self._proc.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the child is ready (or gone); returns :attr:`ready`."""
        self._ready.wait(timeout)
        return self.ready

    # ------------------------------------------------------------------------------ buffers
    def slot(self, nbytes: int) -> Slot:
        """A shared buffer of at least ``nbytes``: a free one, or a new one."""
        with self._lock:
            fits = [s for s in self._free if s.nbytes >= nbytes]
            if fits:
                best = min(fits, key=lambda s: s.nbytes)
                self._free.remove(best)
                return best
        size = max(_MIN_SLOT, -(-nbytes // mmap.PAGESIZE) * mmap.PAGESIZE)
        fd = os.memfd_create("quantscope-qc", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            buf = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        return Slot(next(self._slot_ids), size, buf, fd)

    @staticmethod
    def array(slot: Slot, shape: tuple[int, ...], dtype: Any) -> npt.NDArray[Any]:
        """A writable array of ``shape`` and ``dtype`` at the start of ``slot``."""
        dt = np.dtype(dtype)
        return np.frombuffer(slot.buf, dt, int(np.prod(shape))).reshape(shape)

    def release(self, slot: Slot) -> None:
        """Give back a buffer from :meth:`slot` (kept for reuse, or dropped here and in the child).

        A dropped buffer is unmapped once the last array on it is gone."""
        with self._lock:
            if slot.nbytes <= _KEEP_BYTES and len(self._free) < _KEEP_SLOTS:
                self._free.append(slot)
                return
        if slot.fd is not None:
            os.close(slot.fd)
            slot.fd = None
        else:
            self._send(("drop", slot.id))

    # ------------------------------------------------------------------------------ measure
    def measure(
        self, slot: Slot, shape: tuple[int, int, int, int], dtype: Any, bits: int | None
    ) -> Future[Outcome] | None:
        """Have the ``(C, Z, Y, X)`` planes at the start of ``slot`` measured (each channel with
        :func:`~quantscope.quality.best_plane_metrics`); None when the child is not ready or
        the request cannot be sent (the caller measures itself). The future's ``error`` is set
        when the child could not measure; ``slot`` must stay untouched until it is done."""
        if not self.ready:
            return None
        request = next(self._requests)
        fut: Future[Outcome] = Future()
        with self._lock:
            self._pending[request] = fut
        msg = ("measure", request, slot.id, tuple(int(n) for n in shape), np.dtype(dtype).str, bits)
        try:
            with self._send_lock:
                if slot.fd is not None:  # first use: hand the buffer to the child
                    socket.send_fds(
                        self._sock, [pickle.dumps(("slot", slot.id, slot.nbytes))], [slot.fd]
                    )
                    os.close(slot.fd)
                    slot.fd = None
                self._sock.send(pickle.dumps(msg))
        except OSError as e:
            with self._lock:
                self._pending.pop(request, None)
            self._gone(f"could not send to the measuring process: {e}")
            return None
        return fut

    def _send(self, msg: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError), self._send_lock:
            self._sock.send(pickle.dumps(msg))

    # ------------------------------------------------------------------------------- reader
    def _read(self) -> None:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        reason = "the measuring process ended"
        try:
            while True:
                try:
                    n = self._sock.recv_into(buf)
                except OSError as e:
                    reason = f"the measuring process's socket failed: {e}"
                    break
                if n == 0:
                    break
                try:
                    msg = pickle.loads(view[:n])
                except Exception as e:  # a protocol error: stop using the process
                    reason = f"unreadable message from the measuring process: {e!r}"
                    break
                if msg[0] == "done":
                    _, request, metrics, error, seconds = msg
                    with self._lock:
                        fut = self._pending.pop(request, None)
                    if fut is not None:
                        fut.set_result((metrics, error, float(seconds)))
                elif msg[0] == "ready":
                    self._ready.set()
                elif msg[0] == "fatal":
                    reason = f"the measuring process failed: {msg[1].strip().splitlines()[-1]}"
                    _log.warning("%s", msg[1])
                    break
        finally:
            self._gone(reason)

    def _gone(self, reason: str) -> None:
        """Mark the child gone: every pending request completes with ``reason`` as its error."""
        with self._lock:
            if self._dead is None:
                self._dead = reason
                _log.info("quality control measures on threads from now on: %s", reason)
            pending, self._pending = self._pending, {}
        self._ready.set()  # wake wait_ready()
        for fut in pending.values():
            fut.set_result((None, reason, 0.0))

    def close(self, timeout: float = 5.0) -> None:
        """End the child (it exits when its socket closes) and wait for it."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout)
        self._gone("closed")


_shared: MeasuringProcess | None = None
_starts = 0
_images = 0  # images ingest has asked to measure in this process so far
_shared_lock = threading.Lock()

#: Ingest starts the measuring process once this Python process has had this many images
#: measured (those of the current ingest included). Its start costs about 0.3 s of CPU (an
#: interpreter, numpy, scipy.fft), which the images measured outside the ingesting process
#: repay after a few hundred; a one-off ingest of a few dozen images measures on a thread.
START_AFTER_IMAGES = 200


def running_process() -> MeasuringProcess | None:
    """The measuring process of this Python process if one is started and alive (None
    otherwise; nothing is started)."""
    proc = _shared
    if proc is not None and proc.pid == os.getpid() and proc.dead is None:
        return proc
    return None


def process_for_ingest(n_images: int) -> MeasuringProcess | None:
    """The measuring process for an ingest about to measure ``n_images``: the running one, or
    a new one once this Python process has asked for :data:`START_AFTER_IMAGES` images in all
    (None before that, or where :func:`shared_process` gives none)."""
    global _images
    with _shared_lock:
        _images += max(0, n_images)
        enough = _images >= START_AFTER_IMAGES
    if not supported():
        return None
    proc = running_process()
    if proc is not None or not enough:
        return proc
    return shared_process()


def shared_process() -> MeasuringProcess | None:
    """The measuring process of this Python process: started on first use (it becomes ready
    in the background, about 0.2-0.4 s), kept until exit, restarted if it died (at most
    3 starts in all). None where :func:`supported` says no or it could not start."""
    global _shared, _starts
    if not supported():
        return None
    with _shared_lock:
        proc = running_process()
        if proc is not None:
            return proc
        if _shared is not None and _shared.pid == os.getpid():
            _shared.close()
        _shared = None  # gone, or inherited through a fork: not this process's child
        if _starts >= _MAX_STARTS:
            return None
        _starts += 1
        try:
            _shared = MeasuringProcess()
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            _log.info("quality control measures on threads: no measuring process (%s)", e)
            return None
        if _starts == 1:
            atexit.register(_close_shared)
        return _shared


def _close_shared() -> None:
    proc = _shared
    if proc is not None and proc.pid == os.getpid():
        proc.close()
