"""Image records of the catalog: registering stored images and reading them back.

:class:`ImageRecords` is the ``images`` part of a :class:`~quantscope.catalog.Repository`
(``repo.images``). It writes an image's row, channels, source files and stored-file manifest in
one transaction (:meth:`~ImageRecords.register_many`), moves image folders, and reads images,
plates, well folders and stored files back; the module-level helpers convert
between :class:`~quantscope.model.Image` and catalog rows (``_image_row``, ``_channel_rows``,
``_image_from_row``) and name a plate's folder (:func:`plate_folder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from ..errors import CatalogError, InvalidInput, NotFound
from ..model import (
    Acquisition,
    Channel,
    Image,
    ImagingEnvironment,
    Instrument,
    Objective,
    ObjectiveSettings,
    PlatePosition,
    SourceFile,
    StagePosition,
)
from . import _schema as S
from ._bulk import insert_rows
from ._ids import MIN_PREFIX, ambiguous, lookup_prefix
from ._part import Part

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["ImageRecords", "ImageRegistration", "PlateField", "PlateInfo", "plate_folder"]


@dataclass(frozen=True)
class ImageRegistration:
    """Everything recorded about one newly stored image, written in one transaction."""

    image: Image
    source_formats: dict[str, str]  # sha256 -> format name
    manifest: Sequence[tuple[str, int, str]]  # (path relative to repo root, size, sha256)


class PlateField(NamedTuple):
    """One occupied field of a plate (:meth:`ImageRecords.plates`)."""

    row: int  # 0-based
    column: int  # 0-based
    field: int  # the 1-based site number
    image_id: str
    folder: str  # the field's folder in its well: the last part of the store path (0, 1, ...)


@dataclass(frozen=True)
class PlateInfo:
    """A plate of the catalog: its name, its folder and its occupied fields in order."""

    name: str
    store_path: str  # relative to the repository root (plates/<name>.ome.zarr)
    fields: tuple[PlateField, ...]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ImageRecords(Part):
    """``repo.images``: image rows and what hangs off them (channels, sources, stored files)."""

    # ------------------------------------------------------------------ writes
    def register(self, reg: ImageRegistration) -> None:
        """Record a stored image, its channels, sources and file manifest in one transaction."""
        self.register_many([reg])

    def register_many(self, regs: Sequence[ImageRegistration]) -> None:
        """Record several stored images in one transaction: all of them, or (on error) none.

        Raises
        ------
        CatalogError
            A row violates a constraint (an id or plate position already taken); nothing of
            the batch is recorded.
        """
        if not regs:
            return
        now = _utcnow()
        try:
            with self.engine.begin() as conn:
                plate_ids = {
                    name: self._plate_id(conn, name, now)
                    for name in sorted({r.image.position.plate for r in regs if r.image.position})
                }
                insert_rows(conn, S.images, [_image_row(r.image, plate_ids, now) for r in regs])
                channel_rows = [row for r in regs for row in _channel_rows(r.image)]
                insert_rows(conn, S.channels, channel_rows)
                file_ids = self._source_file_ids(conn, regs, now)
                insert_rows(
                    conn,
                    S.image_sources,
                    [
                        {
                            "image_id": r.image.id,
                            "file_id": file_ids[src.sha256],
                            "scene": src.scene,
                            "channel_offset": src.channel_offset,
                        }
                        for r in regs
                        for src in r.image.sources
                    ],
                )
                manifest = [
                    {"image_id": r.image.id, "path": p, "size": n, "sha256": h}
                    for r in regs
                    for p, n, h in r.manifest
                ]
                insert_rows(conn, S.stored_files, manifest)
        except sa.exc.IntegrityError as e:
            names = ", ".join(repr(r.image.name) for r in regs[:3]) + (
                " …" if len(regs) > 3 else ""
            )
            reason = str(e.orig).strip().splitlines()[0]
            raise CatalogError(f"image {names} cannot be registered: {reason}") from e

    @staticmethod
    def _source_file_ids(
        conn: Connection, regs: Sequence[ImageRegistration], now: datetime
    ) -> dict[str, int]:
        sf = S.source_files
        wanted = {src.sha256: (r, src) for r in regs for src in r.image.sources}
        ids = dict(
            conn.execute(sa.select(sf.c.sha256, sf.c.id).where(sf.c.sha256.in_(list(wanted)))).all()
        )
        missing = [sha for sha in wanted if sha not in ids]
        if missing:
            insert_rows(
                conn,
                sf,
                [
                    {
                        "sha256": sha,
                        "size": wanted[sha][1].size,
                        "path": wanted[sha][1].path,
                        "format": wanted[sha][0].source_formats.get(sha, "unknown"),
                        "reader": wanted[sha][1].reader,
                        "ingested_at": now,
                    }
                    for sha in missing
                ],
            )
            ids.update(
                conn.execute(sa.select(sf.c.sha256, sf.c.id).where(sf.c.sha256.in_(missing))).all()
            )
        return ids

    def _plate_id(self, conn: Connection, name: str, now: datetime) -> int:
        pid = conn.execute(sa.select(S.plates.c.id).where(S.plates.c.name == name)).scalar()
        if pid is None:
            pid = conn.execute(
                S.plates.insert().values(
                    name=name,
                    store_path=f"plates/{plate_folder(name)}",
                    created_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return int(pid)

    def delete(self, image_id: str) -> None:
        """Remove an image from the catalog (its files are removed by the caller)."""
        with self.engine.begin() as conn:
            conn.execute(S.images.delete().where(S.images.c.id == image_id))
            conn.execute(
                S.source_files.delete().where(
                    ~S.source_files.c.id.in_(sa.select(S.image_sources.c.file_id))
                )
            )

    # ------------------------------------------------------------------ reads
    def known_sources(self, sha256s: Sequence[str]) -> dict[str, list[str]]:
        """For each SHA-256 already ingested: the ids of images made from it."""
        out: dict[str, list[str]] = {}
        if not sha256s:
            return out
        q = (
            sa.select(S.source_files.c.sha256, S.image_sources.c.image_id)
            .join(S.image_sources, S.image_sources.c.file_id == S.source_files.c.id)
            .where(S.source_files.c.sha256.in_(list(set(sha256s))))
        )
        with self.engine.connect() as conn:
            for sha, image_id in conn.execute(q):
                out.setdefault(sha, []).append(image_id)
        return out

    def at(self, plate: str, row: int, column: int, field: int) -> str | None:
        """Id of the image at a plate position, if any."""
        q = (
            sa.select(S.images.c.id)
            .join(S.plates, S.plates.c.id == S.images.c.plate_id)
            .where(
                S.plates.c.name == plate,
                S.images.c.plate_row == row,
                S.images.c.plate_column == column,
                S.images.c.field == field,
            )
        )
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def move_folders(self, moves: Sequence[tuple[str, str, str]]) -> None:
        """Record that image folders moved: ``(image id, old store path, new store path)``.

        The image's store path, its stored-file manifest and the paths of analysis outputs
        inside its folder (label images) change in one transaction. Idempotent: an image whose
        store path is already the new one is left as it is.
        """
        from . import _schema_analysis as A

        if not moves:
            return
        with self.engine.begin() as conn:
            for image_id, old, new in moves:
                done = conn.execute(
                    sa.update(S.images)
                    .where(S.images.c.id == image_id, S.images.c.store_path == old)
                    .values(store_path=new)
                ).rowcount
                if not done:
                    continue
                for table in (S.stored_files, A.analysis_artifacts):
                    rows = conn.execute(
                        sa.select(table.c.path).where(table.c.image_id == image_id)
                    ).scalars()
                    for path in list(rows):
                        if path == old or path.startswith(old + "/"):
                            conn.execute(
                                sa.update(table)
                                .where(table.c.image_id == image_id, table.c.path == path)
                                .values(path=new + path[len(old) :])
                            )

    def store_paths(self) -> dict[str, str]:
        """{image id: store path} of every image — a light query for cleanup and bookkeeping
        (:meth:`all` loads every channel and source too)."""
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(S.images.c.id, S.images.c.store_path)).all())  # type: ignore[arg-type]

    def plate_positions(self, plates: Sequence[str]) -> dict[tuple[str, int, int, int], str]:
        """Image id at every occupied (plate, row, column, field) of the named plates."""
        if not plates:
            return {}
        i, p = S.images, S.plates
        q = (
            sa.select(p.c.name, i.c.plate_row, i.c.plate_column, i.c.field, i.c.id)
            .join(p, p.c.id == i.c.plate_id)
            .where(p.c.name.in_(list(set(plates))))
        )
        with self.engine.connect() as conn:
            return {(n, r, c, f): image_id for n, r, c, f, image_id in conn.execute(q)}

    def well_folders(self, plates: Sequence[str]) -> dict[tuple[str, int, int], set[str]]:
        """The field folders (``0``, ``1``, …) already used in each (plate, row, column) well."""
        if not plates:
            return {}
        i, p = S.images, S.plates
        q = (
            sa.select(p.c.name, i.c.plate_row, i.c.plate_column, i.c.store_path)
            .join(p, p.c.id == i.c.plate_id)
            .where(p.c.name.in_(list(set(plates))))
        )
        out: dict[tuple[str, int, int], set[str]] = {}
        with self.engine.connect() as conn:
            for n, r, c, path in conn.execute(q):
                out.setdefault((n, r, c), set()).add(path.rsplit("/", 1)[-1])
        return out

    def all(self, ids: Sequence[str] | None = None) -> list[Image]:
        """Every image (or those with the given ids), ordered by plate name and position, then
        name; images without a plate come last (as in ``repo.query.find``)."""
        i, p = S.images, S.plates
        q = sa.select(i, p.c.name.label("plate_name")).select_from(
            i.outerjoin(p, p.c.id == i.c.plate_id)
        )
        if ids is not None:
            q = q.where(i.c.id.in_(list(ids)))
        # images without a plate last on every backend (SQLite sorts NULL first, PostgreSQL last)
        q = q.order_by(
            p.c.name.is_(None),
            p.c.name,
            i.c.plate_row,
            i.c.plate_column,
            i.c.field,
            i.c.name,
            i.c.id,
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            wanted = [r["id"] for r in rows]
            chans: dict[str, list[Channel]] = {}
            srcs: dict[str, list[SourceFile]] = {}
            if wanted:
                cq = sa.select(S.channels).order_by(S.channels.c.image_id, S.channels.c.idx)
                sq = (
                    sa.select(S.image_sources, S.source_files)
                    .join(S.source_files, S.source_files.c.id == S.image_sources.c.file_id)
                    .order_by(S.image_sources.c.image_id, S.image_sources.c.channel_offset)
                )
                if ids is not None:
                    cq = cq.where(S.channels.c.image_id.in_(wanted))
                    sq = sq.where(S.image_sources.c.image_id.in_(wanted))
                for c in conn.execute(cq).mappings():
                    chans.setdefault(c["image_id"], []).append(_channel_from_row(c))
                for s in conn.execute(sq).mappings():
                    srcs.setdefault(s["image_id"], []).append(
                        SourceFile(
                            path=s["path"],
                            size=s["size"],
                            sha256=s["sha256"],
                            reader=s["reader"],
                            scene=s["scene"],
                            channel_offset=s["channel_offset"],
                        )
                    )
        return [_image_from_row(r, chans.get(r["id"], []), srcs.get(r["id"], [])) for r in rows]

    def get(self, image_id: str) -> Image:
        """One image by id (a unique prefix of at least 3 characters also works)."""
        found = self.all([image_id])
        if not found:
            with self.engine.connect() as conn:
                ids = lookup_prefix(conn, S.images.c.id, image_id)
            if len(ids) == 1:
                found = self.all(ids)
            elif len(ids) > 1:
                raise InvalidInput(f"{self.root}: {ambiguous('image id', image_id, ids)}")
        if not found:
            hint = (
                f"; a prefix needs at least {MIN_PREFIX} characters"
                if len(image_id) < MIN_PREFIX
                else ""
            )
            raise NotFound(
                f"{self.root}: no image with id {image_id!r}{hint} (see `quantscope ls`)"
            )
        return found[0]

    def stored_files(self, image_id: str | None = None) -> list[tuple[str, str, int, str]]:
        """(image id, path relative to the repository, size, SHA-256) of stored files."""
        q = sa.select(
            S.stored_files.c.image_id,
            S.stored_files.c.path,
            S.stored_files.c.size,
            S.stored_files.c.sha256,
        )
        if image_id is not None:
            q = q.where(S.stored_files.c.image_id == image_id)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q.order_by(S.stored_files.c.path))]  # type: ignore[misc]

    def plates(self) -> list[PlateInfo]:
        """Plates by name, each with its store path and its fields in (row, column, field)
        order; a field's folder is the last part of its image's store path (``0``, ``1``, …)."""
        with self.engine.connect() as conn:
            plates = conn.execute(sa.select(S.plates).order_by(S.plates.c.name)).mappings().all()
            out = []
            for p in plates:
                fields = conn.execute(
                    sa.select(
                        S.images.c.plate_row,
                        S.images.c.plate_column,
                        S.images.c.field,
                        S.images.c.id,
                        S.images.c.store_path,
                    )
                    .where(S.images.c.plate_id == p["id"])
                    .order_by(S.images.c.plate_row, S.images.c.plate_column, S.images.c.field)
                ).all()
                out.append(
                    PlateInfo(
                        p["name"],
                        p["store_path"],
                        tuple(
                            PlateField(r, c, f, i, sp.rsplit("/", 1)[-1])
                            for r, c, f, i, sp in fields
                        ),
                    )
                )
        return out

    def names(self, image_ids: Sequence[str]) -> dict[str, str]:
        """{image id: name} of the images of ``image_ids`` in the catalog (one light query; ids
        not in the catalog are left out)."""
        i = S.images
        sel = sa.select(i.c.id, i.c.name).where(i.c.id.in_(list(image_ids)))
        with self.engine.connect() as conn:
            return {k: v for k, v in conn.execute(sel)}


def _image_row(img: Image, plate_ids: dict[str, int], now: datetime) -> dict[str, Any]:
    acq = img.acquisition
    inst = acq.instrument or Instrument()
    obj = acq.objective or Objective()
    settings = acq.objective_settings or ObjectiveSettings()
    stage = acq.stage or StagePosition()
    env = acq.environment or ImagingEnvironment()
    pos = img.position
    return {
        "id": img.id,
        "name": img.name,
        "plate_id": plate_ids[pos.plate] if pos else None,
        "plate_row": pos.row if pos else None,
        "plate_column": pos.column if pos else None,
        "field": pos.field if pos else None,
        "well": pos.well if pos else None,
        "size_t": img.shape[0],
        "size_c": img.shape[1],
        "size_z": img.shape[2],
        "size_y": img.shape[3],
        "size_x": img.shape[4],
        "dtype": img.dtype,
        "physical_size_x_um": img.physical_size_x_um,
        "physical_size_y_um": img.physical_size_y_um,
        "physical_size_z_um": img.physical_size_z_um,
        "time_increment_s": acq.time_increment_s,
        "acquired_at": acq.acquired_at,
        "instrument_manufacturer": inst.manufacturer,
        "instrument_model": inst.model,
        "microscope_type": inst.microscope_type,
        "objective_manufacturer": obj.manufacturer,
        "objective_model": obj.model,
        "objective_magnification": obj.nominal_magnification,
        "objective_na": obj.lens_na,
        "objective_immersion": obj.immersion,
        "objective_correction": obj.correction,
        "objective_calibrated_magnification": obj.calibrated_magnification,
        "objective_working_distance_um": obj.working_distance_um,
        "objective_medium": settings.medium,
        "objective_refractive_index": settings.refractive_index,
        "significant_bits": img.significant_bits,
        "description": img.description,
        "stage_x_um": stage.x_um,
        "stage_y_um": stage.y_um,
        "stage_z_um": stage.z_um,
        "stage_label": stage.label,
        "environment_temperature_c": env.temperature_c,
        "environment_air_pressure_mbar": env.air_pressure_mbar,
        "environment_humidity_percent": env.humidity_percent,
        "environment_co2_percent": env.co2_percent,
        "store_path": img.store_path,
        "levels": img.levels,
        "bytes_stored": img.bytes_stored,
        "created_at": now,
    }


def plate_folder(name: str) -> str:
    """Folder name of a plate's OME-Zarr inside ``plates/``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip(".") or "plate"
    return f"{safe}.ome.zarr"


def _channel_rows(img: Image) -> list[dict[str, Any]]:
    """Rows of the ``channels`` table for ``img``: the channel's own settings, plus the kind,
    model and power of its light source and the type and model of its detector (looked up in
    the image's instrument), so that they can be queried per channel."""
    inst = img.acquisition.instrument or Instrument()
    rows = []
    for ch in img.channels:
        src = inst.light_source(ch.light_source_id)
        det = inst.detector(ch.detector_id)
        rows.append(
            {
                "image_id": img.id,
                "idx": ch.index,
                "name": ch.name,
                "color": ch.color,
                "excitation_wavelength_nm": ch.excitation_wavelength_nm,
                "emission_wavelength_nm": ch.emission_wavelength_nm,
                "exposure_time_s": ch.exposure_time_s,
                "fluor": ch.fluor,
                "illumination_type": ch.illumination_type,
                "contrast_method": ch.contrast_method,
                "acquisition_mode": ch.acquisition_mode,
                "pinhole_size_um": ch.pinhole_size_um,
                "nd_filter": ch.nd_filter,
                "light_source_kind": src.kind if src else None,
                "light_source_model": src.model if src else None,
                "light_source_wavelength_nm": ch.light_source_wavelength_nm
                or (src.wavelength_nm if src else None),
                "light_source_power_mw": src.power_mw if src else None,
                "light_source_attenuation": ch.light_source_attenuation,
                "detector_type": det.type if det else None,
                "detector_model": det.model if det else None,
                "detector_gain": ch.detector_gain
                if ch.detector_gain is not None
                else (det.gain if det else None),
                "detector_offset": ch.detector_offset
                if ch.detector_offset is not None
                else (det.offset if det else None),
                "detector_binning": ch.detector_binning,
                "detector_voltage_v": ch.detector_voltage_v
                if ch.detector_voltage_v is not None
                else (det.voltage_v if det else None),
                "detector_read_out_rate_mhz": ch.detector_read_out_rate_mhz,
            }
        )
    return rows


def _channel_from_row(c: Any) -> Channel:
    """A :class:`Channel` from its catalog row (the light source's and detector's own
    properties live in the stored OME-XML, see :func:`quantscope.metadata.enrich`)."""
    return Channel(
        index=c["idx"],
        name=c["name"],
        color=c["color"],
        excitation_wavelength_nm=c["excitation_wavelength_nm"],
        emission_wavelength_nm=c["emission_wavelength_nm"],
        exposure_time_s=c["exposure_time_s"],
        fluor=c["fluor"],
        illumination_type=c["illumination_type"],
        contrast_method=c["contrast_method"],
        acquisition_mode=c["acquisition_mode"],
        pinhole_size_um=c["pinhole_size_um"],
        nd_filter=c["nd_filter"],
        light_source_wavelength_nm=c["light_source_wavelength_nm"],
        light_source_attenuation=c["light_source_attenuation"],
        detector_gain=c["detector_gain"],
        detector_offset=c["detector_offset"],
        detector_binning=c["detector_binning"],
        detector_voltage_v=c["detector_voltage_v"],
        detector_read_out_rate_mhz=c["detector_read_out_rate_mhz"],
    )


def _some(model: Any) -> Any:
    """``model`` if any of its fields is set, else None."""
    return model if any(v not in (None, ()) for v in model.model_dump().values()) else None


def _image_from_row(r: Any, chans: list[Channel], srcs: list[SourceFile]) -> Image:
    inst = Instrument(
        manufacturer=r["instrument_manufacturer"],
        model=r["instrument_model"],
        microscope_type=r["microscope_type"],
    )
    obj = Objective(
        manufacturer=r["objective_manufacturer"],
        model=r["objective_model"],
        nominal_magnification=r["objective_magnification"],
        lens_na=r["objective_na"],
        immersion=r["objective_immersion"],
        correction=r["objective_correction"],
        calibrated_magnification=r["objective_calibrated_magnification"],
        working_distance_um=r["objective_working_distance_um"],
    )
    settings = ObjectiveSettings(
        medium=r["objective_medium"], refractive_index=r["objective_refractive_index"]
    )
    stage = StagePosition(
        x_um=r["stage_x_um"], y_um=r["stage_y_um"], z_um=r["stage_z_um"], label=r["stage_label"]
    )
    env = ImagingEnvironment(
        temperature_c=r["environment_temperature_c"],
        air_pressure_mbar=r["environment_air_pressure_mbar"],
        humidity_percent=r["environment_humidity_percent"],
        co2_percent=r["environment_co2_percent"],
    )
    pos = None
    if r["plate_name"] is not None:
        pos = PlatePosition(
            plate=r["plate_name"], row=r["plate_row"], column=r["plate_column"], field=r["field"]
        )
    return Image(
        id=r["id"],
        name=r["name"],
        shape=(r["size_t"], r["size_c"], r["size_z"], r["size_y"], r["size_x"]),
        dtype=r["dtype"],
        physical_size_x_um=r["physical_size_x_um"],
        physical_size_y_um=r["physical_size_y_um"],
        physical_size_z_um=r["physical_size_z_um"],
        significant_bits=r["significant_bits"],
        description=r["description"],
        channels=tuple(chans),
        acquisition=Acquisition(
            acquired_at=r["acquired_at"],
            instrument=_some(inst),
            objective=_some(obj),
            objective_settings=_some(settings),
            environment=_some(env),
            stage=_some(stage),
            time_increment_s=r["time_increment_s"],
        ),
        position=pos,
        sources=tuple(srcs),
        store_path=r["store_path"],
        levels=r["levels"],
        bytes_stored=r["bytes_stored"],
        created_at=r["created_at"],
    )
