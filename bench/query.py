"""Catalog at scale: bulk registration rate and query latency of the query language.

Run from the repository root::

    .venv/bin/python bench/query.py              # 1,000,000 images (a few minutes)
    .venv/bin/python bench/query.py --n 100000   # while developing (~30 s)

What it measures, in one process, on an SQLite catalog (see bench/README.md):

1. Bulk registration. ``Repository.images.register_many`` on batches of ``--batch`` images (default
   1000) built with the real model (``quantscope.model.Image``, 3 channels, 1 source file, a
   2-file manifest each; 384-well plates, 2 fields per well). Only the register calls are
   timed; building the pydantic objects is timed apart. Peer (the limit): the same rows
   written with ``sqlite3.executemany`` into an identical empty catalog, for the first
   ``--peer-n`` images, in the same batches and transactions.
2. Annotations and QC rows: a tag on every image ("control" on 1 %, "treated" on the rest),
   ``treatment.concentration`` (numeric, µM) per image, ``biosample.organism`` per plate;
   ``focus_plls`` per channel and a QC status per image (``set_quality``/``set_quality_status``).
3. Query latency: for each typical query, ``repo.query.find_ids(query)`` (parse, field resolution,
   compile, execute, fetch ids) ``--reps`` times: p50 and p95. Peer: a hand-written SQL
   statement giving the same ids, run with ``sqlite3`` on the same file (the checks compare
   the id sets). Also ``repo.query.find(query)`` (the DataFrame with the default columns) p50.

Figures are printed (no pass/fail), then one ``BENCH_JSON {...}`` line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, say, table

TARGETS = {"register_per_s": 5000, "indexed_p50_ms": 50}
WELLS = [(r, c) for r in range(16) for c in range(24)]  # 384-well plate
FIELDS = 2
PER_PLATE = len(WELLS) * FIELDS
CHANNELS = (("DAPI", 405.0, 450.0), ("GFP", 488.0, 520.0), ("Cy5", 640.0, 670.0))
NAS = ((10.0, 0.45), (20.0, 0.75), (40.0, 0.95), (40.0, 1.3), (63.0, 1.4))
T0 = datetime(2023, 1, 1, tzinfo=UTC)


def image_fields(k: int) -> dict[str, Any]:
    """Deterministic metadata of image number ``k``."""
    plate, pos = divmod(k, PER_PLATE)
    well, field = divmod(pos, FIELDS)
    row, col = WELLS[well]
    rng = random.Random(k)
    mag, na = NAS[k % len(NAS)]
    return {
        "id": f"{k:032x}",
        "plate": f"P{plate:05d}",
        "row": row,
        "column": col,
        "field": field,
        "mag": mag,
        "na": na,
        "acquired": T0 + timedelta(minutes=(plate * PER_PLATE + pos) // 8),
        "exposures": [round(rng.uniform(0.01, 0.5), 3) for _ in CHANNELS],
        "sha": f"{k:064x}",
    }


def registrations(start: int, stop: int) -> list[Any]:
    from quantscope.catalog import ImageRegistration
    from quantscope.model import (
        Acquisition,
        Channel,
        Image,
        Instrument,
        Objective,
        PlatePosition,
        SourceFile,
    )

    inst = Instrument(manufacturer="Yokogawa", model="CV8000", microscope_type="Inverted")
    out = []
    for k in range(start, stop):
        f = image_fields(k)
        # f["field"] is the field's 0-based folder in its well; the site number is one more
        pos = PlatePosition(
            plate=f["plate"], row=f["row"], column=f["column"], field=f["field"] + 1
        )
        path = f"plates/{f['plate']}.ome.zarr/{pos.row_name}/{pos.column_name}/{f['field']}"
        img = Image(
            id=f["id"],
            name=f"{f['plate']}_{pos.well}_s{f['field'] + 1}",
            shape=(1, 3, 1, 2048, 2048),
            dtype="uint16",
            physical_size_x_um=0.65,
            physical_size_y_um=0.65,
            channels=tuple(
                Channel(
                    index=i,
                    name=name,
                    excitation_wavelength_nm=ex,
                    emission_wavelength_nm=em,
                    exposure_time_s=f["exposures"][i],
                )
                for i, (name, ex, em) in enumerate(CHANNELS)
            ),
            acquisition=Acquisition(
                acquired_at=f["acquired"],
                instrument=inst,
                objective=Objective(nominal_magnification=f["mag"], lens_na=f["na"]),
            ),
            position=pos,
            sources=(
                SourceFile(
                    path=f"/data/{f['plate']}/{pos.well}_s{f['field'] + 1}.tif",
                    size=8_388_608,
                    sha256=f["sha"],
                    reader="tifffile",
                ),
            ),
            store_path=path,
            levels=3,
            bytes_stored=6_000_000,
        )
        out.append(
            ImageRegistration(
                image=img,
                source_formats={f["sha"]: "tiff"},
                manifest=[(f"{path}/zarr.json", 900, "a" * 64), (f"{path}/0/c/0", 5e6, "b" * 64)],
            )
        )
    return out


# ------------------------------------------------------------------------------------- peer
def peer_register(db: Path, start: int, stop: int, batch: int) -> float:
    """The same rows written with plain sqlite3 (the limit for register_many). Seconds."""
    from quantscope.catalog._images import _image_row

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    plates: dict[str, int] = {}
    elapsed = 0.0
    now = datetime.now(UTC)
    for b0 in range(start, stop, batch):
        regs = registrations(b0, min(stop, b0 + batch))
        rows = []
        for r in regs:
            name = r.image.position.plate
            if name not in plates:
                plates[name] = len(plates) + 1
        for r in regs:
            row = _image_row(r.image, {r.image.position.plate: plates[r.image.position.plate]}, now)
            rows.append(row)
        cols = list(rows[0])
        img_sql = f"INSERT INTO images ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        img_rows = [tuple(_sql_value(r[c]) for c in cols) for r in rows]
        ch_rows = [
            (
                r.image.id,
                c.index,
                c.name,
                c.excitation_wavelength_nm,
                c.emission_wavelength_nm,
                c.exposure_time_s,
            )
            for r in regs
            for c in r.image.channels
        ]
        t0 = time.perf_counter()
        with conn:
            for name in sorted({r.image.position.plate for r in regs}):
                conn.execute(
                    "INSERT OR IGNORE INTO plates (id, name, store_path, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (plates[name], name, f"plates/{name}.ome.zarr", str(now)),
                )
            conn.executemany(img_sql, img_rows)
            conn.executemany(
                "INSERT INTO channels (image_id, idx, name, excitation_wavelength_nm, "
                "emission_wavelength_nm, exposure_time_s) VALUES (?, ?, ?, ?, ?, ?)",
                ch_rows,
            )
            cur = conn.executemany(
                "INSERT INTO source_files (sha256, size, path, format, reader, ingested_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (s.sha256, s.size, s.path, "tiff", s.reader, str(now))
                    for r in regs
                    for s in r.image.sources
                ],
            )
            ids = dict(
                conn.execute(
                    "SELECT sha256, id FROM source_files WHERE id > ?",
                    ((cur.lastrowid or 0) - len(regs),),
                ).fetchall()
            )
            conn.executemany(
                "INSERT INTO image_sources (image_id, file_id, scene, channel_offset) "
                "VALUES (?, ?, ?, ?)",
                [
                    (r.image.id, ids[s.sha256], s.scene, s.channel_offset)
                    for r in regs
                    for s in r.image.sources
                ],
            )
            conn.executemany(
                "INSERT INTO stored_files (image_id, path, size, sha256) VALUES (?, ?, ?, ?)",
                [(r.image.id, p, n, h) for r in regs for p, n, h in r.manifest],
            )
        elapsed += time.perf_counter() - t0
    conn.close()
    return elapsed


def _sql_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


# -------------------------------------------------------------------------------- the data
def add_annotations_and_qc(repo: Any, n: int, batch: int) -> dict[str, float]:
    import sqlalchemy as sa

    from quantscope.catalog import _schema as S

    now = datetime.now(UTC)
    t_ann = t_qc = 0.0
    plates = sorted({f"P{k // PER_PLATE:05d}" for k in range(0, n, PER_PLATE)})
    organisms = ("Homo sapiens", "Mus musculus")
    with repo.engine.begin() as conn:
        conn.execute(
            sa.insert(S.annotations),
            [
                {
                    "target_kind": "plate",
                    "target_id": p,
                    "key": "biosample.organism",
                    "value": organisms[i % 2],
                    "curie": ("NCBITaxon:9606", "NCBITaxon:10090")[i % 2],
                    "source": "bench",
                    "created_at": now,
                }
                for i, p in enumerate(plates)
            ],
        )
    for b0 in range(0, n, batch):
        ks = range(b0, min(n, b0 + batch))
        rows = []
        for k in ks:
            iid = f"{k:032x}"
            tag = "control" if k % 100 == 7 else "treated"
            rows.append(_ann(iid, "tag", tag, None, now))
            conc = float((k * 7919) % 1000) / 10.0
            rows.append(_ann(iid, "treatment.concentration", f"{conc:g}", conc, now, "µM"))
        t0 = time.perf_counter()
        with repo.engine.begin() as conn:
            conn.execute(sa.insert(S.annotations), rows)
        t_ann += time.perf_counter() - t0
        metrics = [
            (
                f"{k:032x}",
                {c: {"focus_plls": -1.0 - ((k * 31 + c * 17) % 400) / 100.0} for c in range(3)},
            )
            for k in ks
        ]
        status = {f"{k:032x}": (("fail", ["focus"]) if k % 50 == 3 else ("pass", [])) for k in ks}
        t0 = time.perf_counter()
        repo.quality.set_metrics(metrics)
        repo.quality.set_status(status)
        t_qc += time.perf_counter() - t0
    return {"annotations_s": t_ann, "qc_s": t_qc}


def _ann(
    iid: str, key: str, value: str, num: float | None, now: datetime, unit: str | None = None
) -> dict[str, Any]:
    return {
        "target_kind": "image",
        "target_id": iid,
        "key": key,
        "value": value,
        "num_value": num,
        "unit": unit,
        "curie": None,
        "source": "bench",
        "created_at": now,
    }


# ------------------------------------------------------------------------------- queries
def queries(n: int) -> list[tuple[str, str, str]]:
    """(label, query, hand-written SQL giving the same ids)."""
    plate = f"P{min(41, (n - 1) // PER_PLATE):05d}"
    return [
        (
            "indexed equality + range",
            'well == "B03" and objective.na >= 1.3',
            "SELECT id FROM images WHERE well = 'B03' AND objective_na >= 1.3",
        ),
        (
            "plate + date range",
            f'plate == "{plate}" and acquired >= 2023-01-02',
            "SELECT i.id FROM images i JOIN plates p ON p.id = i.plate_id "
            f"WHERE p.name = '{plate}' AND i.acquired_at >= '2023-01-02 00:00:00.000000'",
        ),
        (
            "date-time range (1 hour)",
            "acquired >= 2023-01-02T10:00 and acquired < 2023-01-02T11:00",
            "SELECT id FROM images WHERE acquired_at >= '2023-01-02 10:00:00.000000' "
            "AND acquired_at < '2023-01-02 11:00:00.000000'",
        ),
        (
            "tag filter",
            'tag == "control"',
            "SELECT target_id FROM annotations WHERE key = 'tag' AND value = 'control' "
            "AND target_kind = 'image'",
        ),
        (
            "tag + well",
            'tag == "control" and well == "B03"',
            "SELECT i.id FROM images i JOIN annotations a ON a.target_id = i.id "
            "WHERE a.key = 'tag' AND a.value = 'control' AND a.target_kind = 'image' "
            "AND i.well = 'B03'",
        ),
        (
            "like on name (scan)",
            'name like "%_B03_s2"',
            "SELECT id FROM images WHERE name LIKE '%\\_B03\\_s2' ESCAPE '\\'",
        ),
        (
            "same channel + well",
            'channel.name == "DAPI" and channel.exposure_time_s > 0.45 and well == "C05"',
            "SELECT DISTINCT i.id FROM images i JOIN channels c ON c.image_id = i.id "
            "WHERE c.name = 'DAPI' AND c.exposure_time_s > 0.45 AND i.well = 'C05'",
        ),
        (
            "numeric annotation + well",
            'treatment.concentration >= 90 and well == "B03"',
            "SELECT i.id FROM images i JOIN annotations a ON a.target_id = i.id "
            "WHERE a.key = 'treatment.concentration' AND a.num_value >= 90 "
            "AND a.target_kind = 'image' AND i.well = 'B03'",
        ),
        (
            "qc metric[DAPI] + plate",
            f'qc.focus_plls[DAPI] < -4.5 and plate == "{plate}"',
            "SELECT DISTINCT i.id FROM images i JOIN plates p ON p.id = i.plate_id "
            "JOIN quality_metrics q ON q.image_id = i.id JOIN channels c ON c.image_id = i.id "
            f"AND c.idx = q.channel WHERE p.name = '{plate}' AND q.name = 'focus_plls' "
            "AND q.value < -4.5 AND c.name = 'DAPI'",
        ),
        (
            "qc status fail + organism",
            'qc.status == "fail" and biosample.organism == "Mus musculus"',
            "SELECT i.id FROM images i JOIN quality_status s ON s.image_id = i.id "
            "JOIN plates p ON p.id = i.plate_id JOIN annotations a ON a.target_id = p.name "
            "AND a.target_kind = 'plate' WHERE s.status = 'fail' AND a.key = 'biosample.organism' "
            "AND a.value = 'Mus musculus'",
        ),
    ]


def timings(fn: Callable[[], Any], reps: int) -> tuple[list[float], Any]:
    out = fn()  # warm (page cache, lark grammar)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts, out


def pct(ts: list[float], p: float) -> float:
    s = sorted(ts)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))]


@contextlib.contextmanager
def workdir(out: Path | None, keep: bool) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="qs-bench-query-", dir=out))
    try:
        yield d
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="images (default 1,000,000)")
    ap.add_argument("--batch", type=int, default=1000, help="images per register_many call")
    ap.add_argument("--peer-n", type=int, default=100_000, help="images the sqlite3 peer writes")
    ap.add_argument("--reps", type=int, default=20, help="runs of each query")
    ap.add_argument("--out", type=Path, default=None, help="folder for the work files")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    from quantscope.catalog import Repository

    res: dict[str, Any] = {"machine": machine(), "n": args.n, "batch": args.batch}
    say(f"quantscope query benchmark: {args.n:,} images, batches of {args.batch}")
    with workdir(args.out, args.keep) as work:
        repo = Repository.init(work / "repo")
        t_build = t_reg = cpu_reg = 0.0
        t_start = time.perf_counter()
        for b0 in range(0, args.n, args.batch):
            t0 = time.perf_counter()
            regs = registrations(b0, min(args.n, b0 + args.batch))
            t1, c1 = time.perf_counter(), time.process_time()
            repo.images.register_many(regs)
            t2, c2 = time.perf_counter(), time.process_time()
            t_build += t1 - t0
            t_reg += t2 - t1
            cpu_reg += c2 - c1
            done = min(args.n, b0 + args.batch)
            if (b0 // args.batch) % 100 == 99:
                say(f"  {done:>9,} images  {done / t_reg:,.0f}/s registering")
        rate = args.n / t_reg
        say(
            f"register_many: {rate:,.0f} images/s of wall time, {args.n / cpu_reg:,.0f}/s of CPU "
            f"time ({t_reg:.1f} s; building the objects {t_build:.1f} s)"
        )
        res["register"] = {
            "cpu_per_s": args.n / cpu_reg,
            "seconds": t_reg,
            "per_s": rate,
            "build_s": t_build,
            "wall_s": time.perf_counter() - t_start,
        }

        peer_n = min(args.peer_n, args.n)
        peer_repo = Repository.init(work / "peer")
        peer_repo.close()
        t_peer = peer_register(work / "peer" / "catalog.sqlite", 0, peer_n, args.batch)
        peer_rate = peer_n / t_peer
        say(
            f"peer sqlite3.executemany ({peer_n:,} images): {peer_rate:,.0f} images/s; "
            f"register_many / peer = {rate / peer_rate:.2f}"
        )
        res["register"]["peer_per_s"] = peer_rate
        res["register"]["peer_n"] = peer_n

        extra = add_annotations_and_qc(repo, args.n, 10_000)
        say(
            f"annotations (2 per image + 1 per plate): {extra['annotations_s']:.1f} s; "
            f"QC rows (3 metrics + status per image): {extra['qc_s']:.1f} s"
        )
        res.update(extra)
        with repo.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        db = sqlite3.connect(work / "repo" / "catalog.sqlite")

        rows = []
        res["queries"] = []
        for label, q, sql in queries(args.n):
            ts, ids = timings(lambda q=q: repo.query.find_ids(q), args.reps)
            pts, pids = timings(lambda sql=sql: db.execute(sql).fetchall(), args.reps)
            same = set(ids) == {r[0] for r in pids}
            fts, _ = timings(lambda q=q: repo.query.find(q), max(3, args.reps // 4))
            p50, p95, pp50 = pct(ts, 0.5), pct(ts, 0.95), pct(pts, 0.5)
            rows.append(
                [
                    label,
                    len(ids),
                    p50 * 1e3,
                    p95 * 1e3,
                    pp50 * 1e3,
                    p50 / pp50 if pp50 else None,
                    pct(fts, 0.5) * 1e3,
                    "yes" if same else "NO",
                ]
            )
            res["queries"].append(
                {
                    "label": label,
                    "query": q,
                    "n": len(ids),
                    "p50_ms": p50 * 1e3,
                    "p95_ms": p95 * 1e3,
                    "peer_p50_ms": pp50 * 1e3,
                    "find_p50_ms": pct(fts, 0.5) * 1e3,
                    "same_ids": same,
                }
            )
            say(
                f"  {label}: {len(ids):,} images, p50 {p50 * 1e3:.1f} ms, "
                f"p95 {p95 * 1e3:.1f} ms (peer {pp50 * 1e3:.1f} ms)"
            )
        db.close()
        repo.close()
        size = (work / "repo" / "catalog.sqlite").stat().st_size
        res["catalog_bytes"] = size
    say()
    say(
        table(
            [
                "query",
                "images",
                "p50 ms",
                "p95 ms",
                "peer p50 ms",
                "ratio",
                "find() p50 ms",
                "same ids",
            ],
            rows,
        )
    )
    say()
    say(
        f"registration: {rate:,.0f} images/s (target >= {TARGETS['register_per_s']:,}), "
        f"peer {peer_rate:,.0f}/s"
    )
    say(f"catalog size: {size / 1e9:.2f} GB for {args.n:,} images")
    say("BENCH_JSON " + json.dumps(res, default=str))


if __name__ == "__main__":
    main()
