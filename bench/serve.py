"""The web platform's speed: tiles, remote OME-Zarr, search and image records over real HTTP.

Run from the repository root::

    .venv/bin/python bench/serve.py            # full run (a few minutes)
    .venv/bin/python bench/serve.py --quick    # fewer requests, a 10,000-image catalog

What it measures (each figure beside its peer, measured in the same run, as a ratio):

1. Tiles. ``quantscope serve`` (a real server process, ``--workers``) over a repository holding a
   2048² two-channel uint16 synthetic image (``quantscope synth`` + ``ingest``); ``--clients``
   threads (16) each keep one HTTP/1.1 connection open (``http.client``) and fetch 256² tiles
   of level 0 as PNG (the default two-channel composite), ``--requests`` in all, cycling over
   the image's tiles. Figures: tiles/s (wall), p50/p99 latency. Peer (the limit proxy): the
   same 256² windows of both channels read straight from the store in this process with
   zarr-python, no HTTP, no rendering, no PNG (tiles/s, one thread).
2. Remote OME-Zarr. The whole level 0 of that image read with zarr-python over fsspec HTTP
   from ``/zarr/`` vs the same read from the local folder (MB/s of uncompressed pixels; best
   of ``--reps``).
3. Search. ``GET /api/images?q=...&limit=50`` on a catalog of ``--n`` images (100,000; built
   as bench/query.py builds its catalog, with its annotations and QC rows): p50/p95 per query.
   Peer: ``repo.query.page`` on the same catalog in this process (the same work without HTTP).
4. ``GET /api/images/{id}`` round trip p50 (keep-alive loopback) vs ``catalog.image_record``
   in this process.

Targets (2 cores): >= 300 tiles/s, p99 < 100 ms, remote >= 50 % of local, search p50 < 100 ms.
Figures are printed, then one ``BENCH_JSON {...}`` line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, say, table, venv_bin

TARGETS = {"tiles_per_s": 300, "tile_p99_ms": 100, "remote_vs_local": 0.5, "search_p50_ms": 100}
SIZE = 2048  # px, the tile image's edge
TILE = 256


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


# ------------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVER_PIDS: list[int] = []  # the process of the server running now


def server_cpu_s() -> float:
    """CPU seconds used so far by the running server's processes (uvicorn's workers too)."""
    import psutil

    total = 0.0
    for pid in SERVER_PIDS:
        try:
            p = psutil.Process(pid)
            for q in [p, *p.children(recursive=True)]:
                t = q.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _kill_children(pid: int) -> None:
    """Kill uvicorn's worker processes (one may be stuck in a long query)."""
    import psutil

    try:
        for child in psutil.Process(pid).children(recursive=True):
            child.kill()
    except psutil.NoSuchProcess:
        pass


@contextmanager
def server(root: Path, workers: int) -> Iterator[str]:
    """``quantscope serve ROOT`` in its own process; yields its base URL."""
    port = free_port()
    cmd = [venv_bin("quantscope"), "serve", str(root), "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"quantscope serve exited: {err}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("quantscope serve did not start") from None
                time.sleep(0.1)
        SERVER_PIDS[:] = [proc.pid]
        yield url
    finally:
        SERVER_PIDS.clear()
        _kill_children(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def fetch_many(base: str, paths: list[str], clients: int) -> tuple[float, list[float]]:
    """``paths`` fetched by ``clients`` threads, each over one keep-alive connection.
    (wall seconds, per-request latencies in s); any status but 200 stops the benchmark."""
    u = urllib.parse.urlsplit(base)
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    shares = [paths[k::clients] for k in range(clients)]
    start = threading.Barrier(clients + 1)

    def work(mine: list[str]) -> None:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        got = []
        start.wait()
        for p in mine:
            t0 = time.perf_counter()
            conn.request("GET", p)
            r = conn.getresponse()
            body = r.read()
            got.append(time.perf_counter() - t0)
            if r.status != 200 or not body:
                with lock:
                    errors.append(f"{p}: {r.status}")
                break
        conn.close()
        with lock:
            lat.extend(got)

    threads = [threading.Thread(target=work, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"requests failed: {errors[:3]}")
    return wall, lat


# ------------------------------------------------------------------------------- data setup


def build_tile_repo(work: Path) -> Path:
    """A repository with one SIZE² two-channel uint16 image (synth + init + ingest)."""
    qs = venv_bin("quantscope")
    src, root = work / "synth", work / "tiles-repo"
    for args in (
        [
            "synth",
            str(src),
            "--plate",
            "1x1",
            "--fields",
            "1",
            "--channels",
            "DAPI,GFP",
            "--size",
            str(SIZE),
            "--seed",
            "1",
        ],
        ["init", str(root)],
        ["ingest", str(root), str(src / "images")],
    ):
        subprocess.run([qs, *args], check=True, stdout=subprocess.DEVNULL)
    return root


def build_catalog(work: Path, n: int) -> Path:
    """A catalog of ``n`` images as bench/query.py builds it (no pixels)."""
    from quantscope.catalog import Repository
    from query import add_annotations_and_qc, registrations

    root = work / "search-repo"
    with Repository.init(root) as repo:
        for b0 in range(0, n, 2000):
            repo.images.register_many(registrations(b0, min(n, b0 + 2000)))
        add_annotations_and_qc(repo, n, 10_000)
    return root


# --------------------------------------------------------------------------------- measures


def tile_paths(image_id: str, n: int, *, fresh: bool) -> list[str]:
    """``n`` tile requests cycling over level 0; ``fresh``: each with a contrast of its own
    (``max``), so that every request renders and encodes (no rendered-tile cache hit)."""
    per = SIZE // TILE
    out = []
    for k in range(n):
        y, x = divmod(k % (per * per), per)
        query = f"?min=0,0&max={1000 + k},{2000 + k}" if fresh else ""
        out.append(f"/api/images/{image_id}/tiles/0/0/{y}/{x}.png{query}")
    return out


def local_tiles(path: Path, n: int) -> float:
    """Tiles/s of reading the same 256² windows of both channels with zarr-python, no HTTP."""
    import numpy as np
    import zarr

    arr = zarr.open_group(str(path), mode="r")["0"]
    per = SIZE // TILE
    t0 = time.perf_counter()
    for k in range(n):
        y, x = divmod(k % (per * per), per)
        for c in range(2):
            np.asarray(arr[0, c, 0, y * TILE : (y + 1) * TILE, x * TILE : (x + 1) * TILE])
    return n / (time.perf_counter() - t0)


def raw_chunk_reads(path: Path, n: int) -> float:
    """Tiles/s of reading the chunk files a tile needs (both channels) as bytes from disk: no
    decoding at all (the disk-and-page-cache limit)."""
    meta = json.loads((path / "0" / "zarr.json").read_text())
    cy = meta["chunk_grid"]["configuration"]["chunk_shape"][3]
    per = SIZE // TILE
    t0 = time.perf_counter()
    for k in range(n):
        y, x = divmod(k % (per * per), per)
        for c in range(2):
            (path / "0" / f"c.0.{c}.0.{y * TILE // cy}.{x * TILE // cy}").read_bytes()
    return n / (time.perf_counter() - t0)


def quantscope_reads(path: Path, n: int) -> float:
    """Tiles/s of the same windows with the server's reader, decoding every time (no cache)."""
    from quantscope.io import OmeZarrPlanes

    planes = OmeZarrPlanes(path)
    per = SIZE // TILE
    t0 = time.perf_counter()
    for k in range(n):
        y, x = divmod(k % (per * per), per)
        for c in range(2):
            planes.window(0, c, 0, 0, (y * TILE, (y + 1) * TILE), (x * TILE, (x + 1) * TILE))
    return n / (time.perf_counter() - t0)


def measure_tiles(base: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    image = get_json(base + "/api/images")["items"][0]
    rec = get_json(base + f"/api/images/{image['id']}")
    repeated = tile_paths(image["id"], args.requests, fresh=False)
    fetch_many(base, repeated[:64], 4)  # warm: open arrays, decoded chunks, rendered tiles
    local = local_tiles(root / rec["store_path"], min(args.requests, 400))
    raw = raw_chunk_reads(root / rec["store_path"], min(args.requests, 400))
    uncached = quantscope_reads(root / rec["store_path"], min(args.requests, 400))
    out: dict[str, Any] = {
        "clients": args.clients,
        "workers": args.workers,
        "local_zarr_tiles_per_s": local,
        "raw_chunk_file_reads_per_s": raw,
        "quantscope_reader_uncached_per_s": uncached,
    }
    for kind, fresh in (("rendered", True), ("repeated", False)):
        paths = tile_paths(image["id"], args.requests, fresh=fresh)
        cpu0 = server_cpu_s()
        wall, lat = fetch_many(base, paths, args.clients)
        cpu_ms = 1e3 * (server_cpu_s() - cpu0) / len(paths)
        rate = len(paths) / wall
        out[kind] = {
            "requests": len(paths),
            "server_cpu_ms_per_tile": cpu_ms,
            "tiles_per_s_on_2_free_cores": 2000 / cpu_ms,
            "tiles_per_s": rate,
            "p50_ms": 1e3 * pct(lat, 50),
            "p99_ms": 1e3 * pct(lat, 99),
            "ratio_to_local": rate / local,
        }
        say(
            f"tiles ({kind}): {rate:,.0f}/s over HTTP ({args.clients} clients, "
            f"{args.workers} worker(s)), p50 {out[kind]['p50_ms']:.1f} ms, "
            f"p99 {out[kind]['p99_ms']:.1f} ms; ratio to local reads {rate / local:.2f}; "
            f"server CPU {cpu_ms:.2f} ms/tile (= {2000 / cpu_ms:,.0f} tiles/s on 2 free cores)"
        )
    say(
        f"  in this process, per tile (both channels): zarr-python reads {local:,.0f}/s; the "
        f"server's reader without its chunk cache {uncached:,.0f}/s; the chunk files' bytes "
        f"alone (no decoding) {raw:,.0f}/s"
    )
    return out


def measure_remote(base: str, root: Path, reps: int) -> dict[str, Any]:
    import numpy as np
    import zarr

    image = get_json(base + "/api/images")["items"][0]
    rec = get_json(base + f"/api/images/{image['id']}")

    def read(where: str) -> tuple[float, Any]:
        t0 = time.perf_counter()
        a = np.asarray(zarr.open_group(where, mode="r")["0"][:])
        return time.perf_counter() - t0, a

    remote = [read(rec["zarr_url"]) for _ in range(reps)]
    local = [read(str(root / rec["store_path"])) for _ in range(reps)]
    if not np.array_equal(remote[0][1], local[0][1]):
        raise SystemExit("the remote read differs from the local one")
    nbytes = local[0][1].nbytes
    r_s, l_s = min(t for t, _ in remote), min(t for t, _ in local)
    out = {
        "bytes": nbytes,
        "remote_mb_s": nbytes / r_s / 1e6,
        "local_mb_s": nbytes / l_s / 1e6,
        "remote_vs_local": l_s / r_s,
    }
    say(
        f"OME-Zarr level 0 ({nbytes / 1e6:.1f} MB): over HTTP {out['remote_mb_s']:.0f} MB/s, "
        f"local {out['local_mb_s']:.0f} MB/s; remote/local {out['remote_vs_local']:.2f}"
    )
    return out


BUDGET_S = 8.0  # a measurement stops repeating after this long (at least 3 runs)


def keepalive_latencies(base: str, path: str, reps: int, timeout: float = 120) -> list[float]:
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    out: list[float] = []
    for _ in range(reps):
        if len(out) >= 3 and sum(out) > BUDGET_S:
            break
        t0 = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        out.append(time.perf_counter() - t0)
        if r.status != 200:
            raise SystemExit(f"{path}: {r.status}")
    conn.close()
    return out


def in_process(fn: Callable[[], Any], reps: int) -> list[float]:
    out: list[float] = []
    for _ in range(reps):
        if len(out) >= 3 and sum(out) > BUDGET_S:
            break
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


SEARCH_TIMEOUT_S = 15.0  # a search request taking longer is recorded as a timeout


def search_phase(root: Path, qs: list[tuple[str, str]], reps: int, workers: int) -> list[Any]:
    """For each query: (matches, HTTP latencies, page() latencies); ``None`` for a query whose
    request outlived :data:`SEARCH_TIMEOUT_S` (the server is then restarted: its thread would
    go on running the query)."""
    from quantscope.catalog import Repository

    out: list[Any] = []
    todo = list(qs)
    with Repository.open(root) as repo:
        while todo:
            with server(root, workers) as base:
                while todo:
                    _, q = todo.pop(0)
                    path = "/api/images?" + urllib.parse.urlencode({"q": q, "limit": 50})
                    try:
                        keepalive_latencies(base, path, 1, timeout=SEARCH_TIMEOUT_S)  # warm
                        lat = keepalive_latencies(base, path, reps, timeout=SEARCH_TIMEOUT_S)
                    except TimeoutError:
                        out.append(None)
                        break  # a fresh server for the next query
                    local = in_process(lambda q=q: repo.query.page(q, limit=50), reps)
                    out.append((get_json(base + path)["total"], lat, local))
    return out


def measure_search(root: Path, n: int, reps: int, workers: int) -> list[dict[str, Any]]:
    from quantscope.catalog import Repository
    from query import queries

    qs = [("first page, no query", "")] + [(label, q) for label, q, _ in queries(n)]
    before = search_phase(root, qs, reps, workers)
    # the same after ANALYZE: what SQLite's planner does with statistics (the catalog keeps none
    # today; bench/README.md)
    with Repository.open(root) as repo, repo.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    after = search_phase(root, qs, reps, workers)
    rows = []
    for (label, q), b, a in zip(qs, before, after, strict=True):
        row: dict[str, Any] = {"query": label, "q": q}
        for tag, got in (("", b), ("analyzed_", a)):
            if got is None:
                row[f"{tag}p50_ms"] = row[f"{tag}page_p50_ms"] = None
                continue
            row["matches"] = got[0]
            row[f"{tag}p50_ms"] = 1e3 * statistics.median(got[1])
            row[f"{tag}p95_ms"] = 1e3 * pct(got[1], 95)
            row[f"{tag}page_p50_ms"] = 1e3 * statistics.median(got[2])
        rows.append(row)

    def ms(v: float | None) -> Any:
        return f"> {SEARCH_TIMEOUT_S:.0f} s" if v is None else v

    say(f"search on {n:,} images (GET /api/images?q=...&limit=50; peer: repo.query.page):")
    say(
        table(
            ["query", "matches", "HTTP p50 ms", "page() p50", "after ANALYZE: HTTP", "page()"],
            [
                [
                    r["query"],
                    r.get("matches", "?"),
                    ms(r["p50_ms"]),
                    ms(r["page_p50_ms"]),
                    ms(r["analyzed_p50_ms"]),
                    ms(r["analyzed_page_p50_ms"]),
                ]
                for r in rows
            ],
        )
    )
    return rows


def measure_record(base: str, root: Path, reps: int) -> dict[str, Any]:
    from quantscope.catalog import Repository, image_record

    image_id = get_json(base + "/api/images")["items"][0]["id"]
    lat = keepalive_latencies(base, f"/api/images/{image_id}", reps)
    with Repository.open(root) as repo:
        local = in_process(lambda: image_record(repo, image_id), reps)
    out = {"p50_ms": 1e3 * statistics.median(lat), "record_p50_ms": 1e3 * statistics.median(local)}
    out["ratio"] = out["p50_ms"] / out["record_p50_ms"]
    say(
        f"GET /api/images/{{id}}: p50 {out['p50_ms']:.2f} ms; catalog.image_record in process "
        f"{out['record_p50_ms']:.2f} ms; ratio {out['ratio']:.1f}"
    )
    return out


# ------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests, 10,000 images")
    ap.add_argument("--requests", type=int, default=None, help="tile requests (default 4000)")
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients")
    ap.add_argument("--workers", type=int, default=None, help="server processes (default: CPUs)")
    ap.add_argument("--n", type=int, default=None, help="catalog images (default 100,000)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions of each query")
    ap.add_argument("--out", type=Path, default=None, help="folder for the work files")
    args = ap.parse_args()
    args.requests = args.requests or (800 if args.quick else 4000)
    args.n = args.n or (10_000 if args.quick else 100_000)
    args.reps = args.reps or (10 if args.quick else 30)
    args.workers = args.workers or min(4, os.cpu_count() or 1)

    res: dict[str, Any] = {"machine": machine(), "targets": TARGETS}
    say(f"quantscope serve benchmark ({'quick' if args.quick else 'full'})")
    work = Path(tempfile.mkdtemp(prefix="qs-bench-serve-", dir=args.out))
    try:
        t0 = time.perf_counter()
        root = build_tile_repo(work)
        say(f"tile repository built in {time.perf_counter() - t0:.1f} s")
        with server(root, args.workers) as base:
            res["tiles"] = measure_tiles(base, root, args)
            res["remote"] = measure_remote(base, root, 3)
            res["record"] = measure_record(base, root, args.reps * 3)
        t0 = time.perf_counter()
        cat = build_catalog(work, args.n)
        say(f"catalog of {args.n:,} images built in {time.perf_counter() - t0:.1f} s")
        res["search"] = measure_search(cat, args.n, args.reps, args.workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    worst = max((r["p50_ms"] if r["p50_ms"] is not None else float("inf")) for r in res["search"])
    say(
        "targets: tiles/s {:.0f} (>= 300), p99 {:.1f} ms (< 100) (every tile rendered), "
        "remote/local {:.2f} (>= 0.5), search p50 worst {:.1f} ms (< 100)".format(
            res["tiles"]["rendered"]["tiles_per_s"],
            res["tiles"]["rendered"]["p99_ms"],
            res["remote"]["remote_vs_local"],
            worst,
        )
    )
    say("BENCH_JSON " + json.dumps(res, default=str))


if __name__ == "__main__":
    main()
