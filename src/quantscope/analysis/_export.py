"""A run's measurements as one table, and that table as Parquet, CSV or AnnData for the tools of
the ecosystem.

- :func:`run_table`: all rows of one table output of a run; :func:`describe_run_table`: what the
  run's spec says about it (per-object or per-image, which objects, which channels, units);
- :func:`to_cellprofiler`: the names CellProfiler's exports and pycytominer expect
  (``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Site``, ``<Object>_<Feature>``; per image
  ``Count_<Object>``, ``Mean_<Object>_<Feature>``), so that ``pycytominer.aggregate``,
  ``normalize`` and ``feature_select`` take an export without renaming;
- :func:`feature_metadata`: family, channel and unit of every feature, from its CellProfiler
  name and the measuring step's settings (AnnData ``var``);
- :func:`uninformative_columns`: features no analysis can use (all NaN, constant, or with
  undefined values), dropped on request so that ``scanpy.pp.pca`` runs on an export as it is;
- :func:`to_anndata`, :func:`export_table`: the writers (atomic: temporary name, then rename).
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInput, NotFound
from ._outputs import read_table

if TYPE_CHECKING:
    import pandas as pd

    from ..catalog import ArtifactRecord, RunRecord

__all__ = [
    "EXPORT_FORMATS",
    "NAMINGS",
    "OBS_COLUMNS",
    "TableInfo",
    "describe_run_table",
    "export_table",
    "feature_metadata",
    "format_for_path",
    "run_table",
    "to_anndata",
    "to_cellprofiler",
    "uninformative_columns",
]

#: Export formats and the file-name extensions that go with each (the first is the default).
EXPORT_FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet", ".pq"),
    "csv": (".csv",),
    "anndata": (".h5ad",),
}
#: Column naming schemes: quantscope's own (``image_id``, ``well``, ``AreaShape_Area``) and
#: CellProfiler's (``Metadata_Well``, ``Nuclei_AreaShape_Area``).
NAMINGS = ("cellprofiler", "quantscope")

#: Per-object metadata columns of exported tables (AnnData ``obs``), besides non-numeric ones.
OBS_COLUMNS = (
    "image_id",
    "plate",
    "well",
    "field",
    "ObjectNumber",
    "Location_Center_X",
    "Location_Center_Y",
    "Location_Center_Z",
)

# quantscope's metadata columns -> CellProfiler/pycytominer names
_CP_METADATA = {
    "plate": "Metadata_Plate",
    "well": "Metadata_Well",
    # the site (field) number as the catalog gives it: 1-based, as the microscope numbers sites
    "field": "Metadata_Site",
    "image_id": "Metadata_ImageID",
    "ObjectNumber": "Metadata_ObjectNumber",
}
_CP_ORDER = (
    "Metadata_Plate",
    "Metadata_Well",
    "Metadata_Site",
    "Metadata_ImageNumber",
    "Metadata_ImageID",
    "Metadata_ObjectNumber",
)


@dataclass(frozen=True)
class TableInfo:
    """What a table holds, for naming its columns and describing its features.

    Attributes
    ----------
    object_name : str or None
        The objects measured (``"Nuclei"``): the ``<Object>`` of CellProfiler names.
    level : {"object", "image"} or None
        One row per object, or one row per image (counts and means); None: inferred (a table
        with ``Count`` and without ``ObjectNumber`` is per image).
    channels : tuple of str
        The channel names in the feature names (``DNA`` in ``Intensity_MeanIntensity_DNA``).
    length_unit : str
        Unit of shape lengths (``px``, or ``µm`` when the measuring step used the pixel size).
    image_numbers : dict of str to int
        ``Metadata_ImageNumber`` of each image id (1-based, the same in every table of a run);
        images missing here are numbered after these, in the order of their ids.
    """

    object_name: str | None = None
    level: str | None = None
    channels: tuple[str, ...] = ()
    length_unit: str = "px"
    image_numbers: dict[str, int] = field(default_factory=dict)


def format_for_path(path: Path | str) -> str | None:
    """The export format a file name's extension implies, or None."""
    name = str(path).lower()
    for fmt, exts in EXPORT_FORMATS.items():
        if name.endswith(exts):
            return fmt
    return None


def _level(table: pd.DataFrame, info: TableInfo) -> str:
    if info.level is not None:
        if info.level not in ("object", "image"):
            raise InvalidInput(f"table level {info.level!r}: use 'object' or 'image'")
        return info.level
    cols = set(table.columns)
    per_image = ("Count" in cols or any(c.startswith("Count_") for c in cols)) and not (
        cols & {"ObjectNumber", "Metadata_ObjectNumber"}
    )
    return "image" if per_image else "object"


def _is_metadata(table: pd.DataFrame, col: str) -> bool:
    import pandas as pd

    s = table[col]
    return (
        col in _CP_METADATA
        or col.startswith("Metadata_")
        or not pd.api.types.is_numeric_dtype(s)
        or pd.api.types.is_bool_dtype(s)
    )


def to_cellprofiler(table: pd.DataFrame, info: TableInfo) -> pd.DataFrame:
    """A table with the column names of CellProfiler's exports, as pycytominer reads them.

    Per object: ``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Site`` (the site number as
    the catalog gives it), ``Metadata_ImageNumber``, ``Metadata_ImageID``,
    ``Metadata_ObjectNumber``, other text columns as ``Metadata_<name>``, and every feature as
    ``<Object>_<Feature>`` (``Nuclei_AreaShape_Area``, ``Nuclei_Location_Center_X``). Per image:
    the same metadata, ``Count_<Object>``, ``Mean_<Object>_<Feature>`` and
    ``Median_<Object>_<Feature>``.

    Raises
    ------
    InvalidInput
        No object name is known (``info.object_name``).
    """
    obj = info.object_name
    if not obj or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", obj):
        raise InvalidInput(
            f"CellProfiler names need the name of the measured objects (letters and digits, "
            f"such as 'Nuclei'), got {obj!r}; pass TableInfo(object_name=...) or export with "
            "naming='quantscope'"
        )
    level = _level(table, info)
    renamed: dict[str, str] = {}
    for c in table.columns:
        if c in _CP_METADATA:
            renamed[c] = _CP_METADATA[c]
        elif _is_metadata(table, c):
            renamed[c] = c if c.startswith("Metadata_") else f"Metadata_{c}"
        elif level == "image" and c == "Count":
            renamed[c] = f"Count_{obj}"
        elif level == "image" and c.startswith(("Mean_", "Median_")):
            stat, _, rest = c.partition("_")
            renamed[c] = c if rest.startswith(f"{obj}_") else f"{stat}_{obj}_{rest}"
        elif level == "image":
            renamed[c] = c
        else:
            renamed[c] = c if c.startswith(f"{obj}_") else f"{obj}_{c}"
    out = table.rename(columns=renamed)
    if len(set(out.columns)) != len(out.columns):
        dup = sorted({c for c in out.columns if list(out.columns).count(c) > 1})
        raise InvalidInput(f"CellProfiler names collide: {', '.join(dup)}")
    if "Metadata_ImageID" in out and "Metadata_ImageNumber" not in out:
        ids = out["Metadata_ImageID"].astype(str)
        numbers = dict(info.image_numbers)
        nxt = max(numbers.values(), default=0)
        for i in sorted(set(ids) - set(numbers)):
            nxt += 1
            numbers[i] = nxt
        out.insert(0, "Metadata_ImageNumber", ids.map(numbers).astype("int64"))
    first = [c for c in _CP_ORDER if c in out.columns]
    meta = [c for c in out.columns if c.startswith("Metadata_") and c not in first]
    rest = [c for c in out.columns if c not in first and c not in meta]
    return out[first + meta + rest]


# ----------------------------------------------------------------------------- feature metadata
_FAMILY_UNITS = {
    "Texture": "1",
    "Granularity": "%",
    "Location": "px",
    "Count": "1",
}
_SUPERSCRIPT = dict(enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _shape_unit(feature: str, length: str) -> str:
    from ._features._shape import _AREAS, _DIMENSIONLESS, _LENGTHS

    if feature in _LENGTHS:
        return length
    if feature in _AREAS:
        return f"{length}²"
    if feature in _DIMENSIONLESS or feature.startswith(
        ("Zernike_", "NormalizedMoment_", "HuMoment_")
    ):
        return "1"
    if feature == "Orientation":
        return "deg"
    if feature.startswith(("Center_", "BoundingBox")):
        return "px"
    m = re.fullmatch(r"(?:SpatialMoment|CentralMoment)_(\d+)_(\d+)", feature)
    if m:
        p = int(m.group(1)) + int(m.group(2))
        if p <= 1:
            return "1" if p == 0 else "px"
        return "px" + "".join(_SUPERSCRIPT[int(d)] for d in str(p))
    if feature.startswith("InertiaTensor"):
        return "px²"
    return ""


def _describe(name: str, channels: tuple[str, ...], length: str) -> tuple[str, str, str]:
    """(family, channel, unit) of one feature name without the object prefix."""
    if name == "Count":
        return "Count", "", "1"
    m = re.fullmatch(r"(Mean|Median)_(.+)", name)
    if m:
        return _describe(m.group(2), channels, length)
    family, _, rest = name.partition("_")
    channel = ""
    unit = _FAMILY_UNITS.get(family, "")
    # the channel: a declared channel name as a whole token, else the family's name pattern
    for ch in sorted(channels, key=len, reverse=True):
        if re.search(rf"(?:^|_){re.escape(ch)}(?:_|$)", rest):
            channel = ch
            break
    patterns = {
        "Intensity": r"[A-Za-z]+_(?P<ch>.+)",
        "Location": r"(?:CenterMassIntensity|MaxIntensity)_[XYZ]_(?P<ch>.+)",
        "Texture": r"[A-Za-z0-9]+_(?P<ch>.+)_\d+_\d+_\d+",
        "Granularity": r"\d+_(?P<ch>.+)",
        "RadialDistribution": r"(?:(?:FracAtD|MeanFrac|RadialCV)_(?P<ch>.+)_\d+of\d+"
        r"|Zernike(?:Magnitude|Phase)_(?P<ch2>.+)_\d+_\d+)",
    }
    if not channel and family in patterns:
        m = re.fullmatch(patterns[family], rest)
        if m:
            channel = m.group("ch") if m.groupdict().get("ch") else (m.groupdict().get("ch2") or "")
    if family == "AreaShape":
        unit = _shape_unit(rest, length)
    elif family == "Intensity":
        unit = "px" if rest.startswith("MassDisplacement") else "a.u."
    elif family == "RadialDistribution":
        if rest.startswith("ZernikePhase"):
            unit = "rad"
        elif rest.startswith("ZernikeMagnitude"):
            unit = "a.u."
        else:
            unit = "1"
    elif family == "Neighbors":
        if rest.startswith("PercentTouching"):
            unit = "%"
        elif "Distance" in rest.split("_")[0]:
            unit = "px"
        elif rest.startswith("AngleBetweenNeighbors"):
            unit = "deg"
        else:
            unit = "1"
    return family, channel, unit


def feature_metadata(columns: list[str] | pd.Index, info: TableInfo | None = None) -> pd.DataFrame:
    """Family, channel and unit of each feature column (the AnnData ``var`` of an export).

    The family is the CellProfiler measurement (``AreaShape``, ``Intensity``, ``Location``,
    ``Texture``, ``Granularity``, ``RadialDistribution``, ``Neighbors``, ``Count``); the channel
    is the image the intensity was measured in (empty for shape and neighbour features); the
    unit follows CellProfiler's definitions: ``px``/``px²`` (or ``µm``/``µm²`` for shape lengths
    and areas measured with the pixel size, ``info.length_unit``), ``a.u.`` for intensities
    (images scaled to 0..1 by their dtype's maximum), ``%``, ``deg``, ``rad``, ``1``
    (dimensionless); empty where unknown. Names with the ``<Object>_`` prefix of
    :func:`to_cellprofiler` are understood too.
    """
    import pandas as pd

    info = info or TableInfo()
    rows = []
    for col in columns:
        name = str(col)
        obj = info.object_name
        if obj:
            for pre in ("Mean_", "Median_", ""):
                if name.startswith(f"{pre}{obj}_"):
                    name = pre + name[len(pre) + len(obj) + 1 :]
                    break
            if name == f"Count_{obj}":
                name = "Count"
        family, channel, unit = _describe(name, tuple(info.channels), info.length_unit)
        rows.append({"family": family, "channel": channel, "unit": unit})
    out = pd.DataFrame(rows, index=pd.Index([str(c) for c in columns], name="feature"))
    if info.object_name:
        out["object"] = info.object_name
    return out


def uninformative_columns(table: pd.DataFrame) -> dict[str, list[str]]:
    """Numeric feature columns no analysis can use, by reason.

    ``all_nan``: no value at all; ``constant``: one value for every object; ``not_finite``: some
    values NaN or infinite (PCA and most estimators reject them). Metadata columns
    (``Metadata_*``, ids, plate, well, site, object numbers, text) are never listed.
    """
    out: dict[str, list[str]] = {"all_nan": [], "constant": [], "not_finite": []}
    for c in table.columns:
        if _is_metadata(table, c) or c in OBS_COLUMNS:
            continue
        v = table[c].to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(v)
        if not finite.any():
            out["all_nan"].append(str(c))
        elif not finite.all():
            out["not_finite"].append(str(c))
        elif v.min() == v.max():
            out["constant"].append(str(c))
    return out


# ----------------------------------------------------------------------------- run tables
def _resolve_run(repo: Any, run_id: str) -> RunRecord:
    if run_id == "latest":
        runs: list[RunRecord] = repo.runs.all()
        if not runs:
            raise NotFound(f"{repo.root}: no analysis runs yet (start one with `quantscope run`)")
        return runs[0]
    run: RunRecord = repo.runs.get(run_id)
    return run


def run_table(repo: Any, run_id: str, table: str | None = None) -> tuple[pd.DataFrame, str]:
    """All rows of one table output of a run (computed or reused parts, in image order).

    Parameters
    ----------
    repo : quantscope.catalog.Repository
        An open repository.
    run_id : str
        Run id, a unique prefix, or ``"latest"``.
    table : str, optional
        Output name (``Nuclei_features``); needed where the run has several per-object tables.

    Returns
    -------
    (pandas.DataFrame, str)
        The table and its output name.
    """
    import pandas as pd

    run = _resolve_run(repo, run_id)
    arts: list[ArtifactRecord] = [a for a in repo.runs.artifacts(run.id) if a.kind == "table"]
    names = sorted({a.output for a in arts})
    if not names:
        raise NotFound(f"{repo.root}: run {run.id} produced no tables")
    if table is None:
        # the per-object tables: outputs of a "table" port in the run's spec
        object_tables = [
            o
            for s in run.spec.get("steps", [])
            for p, o in s.get("outputs", {}).items()
            if p == "table" and o in names
        ]
        if len(object_tables) != 1:
            raise InvalidInput(
                f"run {run.id[:12]} has {len(names)} tables ({', '.join(names)}); choose one "
                "with --table"
            )
        table = object_tables[0]
    if table not in names:
        raise NotFound(f"run {run.id[:12]} has no table {table!r} (its tables: {', '.join(names)})")
    parts = [read_table(repo.root, a.path) for a in arts if a.output == table]
    nonempty = [p for p in parts if len(p)] or parts[:1]
    df = pd.concat(nonempty, ignore_index=True) if len(nonempty) > 1 else nonempty[0]
    return df, table


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [str(k) for k in value]
    return [str(v) for v in value]


def describe_run_table(repo: Any, run_id: str, table: str) -> TableInfo:
    """What a run's spec says about one of its tables (for :func:`to_cellprofiler` and
    :func:`feature_metadata`).

    The objects are the ``labels`` input of the step that wrote the table (else the table's name
    without ``_features``); a ``summary`` output is per image, any other per object; the
    channels are the step's ``images`` inputs; shape lengths are in µm when the step measured
    with ``physical_units`` and every image of the run has a pixel size, else in px. Image
    numbers count the run's images in the order of their ids, so that a run's per-object and
    per-image exports join on ``Metadata_ImageNumber``.
    """
    run = _resolve_run(repo, run_id)
    step: dict[str, Any] = {}
    port = ""
    for s in run.spec.get("steps", []):
        for p, o in (s.get("outputs") or {}).items():
            if o == table:
                step, port = s, p
    inputs = step.get("inputs") or {}
    labels = _names(inputs.get("labels"))
    obj = labels[0] if labels else table.removesuffix("_features")
    obj = re.sub(r"[^A-Za-z0-9]", "", obj) or "Objects"
    arts: list[ArtifactRecord] = repo.runs.artifacts(run.id)
    ids = sorted({a.image_id for a in arts if a.image_id})
    length = "px"
    if (step.get("parameters") or {}).get("physical_units"):
        sizes: list[float | None] = []
        for i in ids:
            try:
                img = repo.images.get(i)
            except NotFound:
                sizes.append(None)
                continue
            sizes.append(img.physical_size_x_um or img.physical_size_y_um)
        length = "µm" if sizes and all(s for s in sizes) else "µm or px"
    return TableInfo(
        object_name=obj,
        level="image" if port == "summary" else ("object" if port else None),
        channels=tuple(_names(inputs.get("images"))),
        length_unit=length,
        image_numbers={i: n for n, i in enumerate(ids, start=1)},
    )


# ----------------------------------------------------------------------------- writers
def _drop(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    dropped = uninformative_columns(table)
    gone = {c for cols in dropped.values() for c in cols}
    return table[[c for c in table.columns if c not in gone]], dropped


def to_anndata(
    table: pd.DataFrame,
    uns: dict[str, Any] | None = None,
    *,
    info: TableInfo | None = None,
    drop_uninformative: bool = False,
) -> Any:
    """A table as an :class:`anndata.AnnData`.

    ``obs``: one row per object (or image) with its metadata (image id, plate, well, field,
    object number, centroid and any text columns; ``Metadata_*`` with CellProfiler names);
    ``var``: the numeric features with their ``family``, ``channel`` and ``unit``
    (:func:`feature_metadata`); ``X``: float64 values (NaN where undefined).

    With ``drop_uninformative``, features that are all NaN, constant, or partly undefined are
    left out (:func:`uninformative_columns`), so that ``scanpy.pp.pca`` runs on the result as it
    is; ``uns["quantscope_dropped"]`` lists them by reason.
    """
    import anndata as ad
    import pandas as pd

    info = info or TableInfo()
    dropped: dict[str, list[str]] = {}
    if drop_uninformative:
        table, dropped = _drop(table)
    obj = info.object_name
    centroid = {f"{obj}_{c}" for c in OBS_COLUMNS if c.startswith("Location_")} if obj else set()
    obs_cols = [
        c for c in table.columns if c in OBS_COLUMNS or c in centroid or _is_metadata(table, c)
    ]
    var_cols = [c for c in table.columns if c not in obs_cols]
    obs = table[obs_cols].copy()
    for c in obs.columns:
        if obs[c].dtype == object or isinstance(obs[c].dtype, pd.StringDtype):
            obs[c] = obs[c].astype("string").fillna("").astype("category")
    id_col = next((c for c in ("image_id", "Metadata_ImageID") if c in table), None)
    num_col = next((c for c in ("ObjectNumber", "Metadata_ObjectNumber") if c in table), None)
    ids = table[id_col].astype(str) if id_col else pd.Series(["?"] * len(table))
    if num_col is None and id_col is not None and ids.is_unique:
        index = ids.to_numpy(dtype=str)
    else:
        num = (
            table[num_col].astype(str)
            if num_col
            else pd.Series(range(1, len(table) + 1)).astype(str)
        )
        index = (ids.to_numpy() + "_" + num.to_numpy()).astype(str)
    obs.index = pd.Index(index, name="object" if num_col else "image")
    x = table[var_cols].to_numpy(dtype=np.float64, na_value=np.nan)
    var = feature_metadata(var_cols, info)
    out_uns = dict(uns or {})
    kept = {k: v for k, v in dropped.items() if v}
    if kept:
        out_uns["quantscope_dropped"] = kept
    return ad.AnnData(X=x, obs=obs, var=var, uns=out_uns)


def export_table(
    table: pd.DataFrame,
    out: Path,
    fmt: str,
    uns: dict[str, Any] | None = None,
    *,
    naming: str | None = None,
    info: TableInfo | None = None,
    drop_uninformative: bool = False,
) -> Path:
    """Write a table as ``parquet``, ``csv`` or ``anndata`` (``.h5ad``), atomically.

    Parameters
    ----------
    table : pandas.DataFrame
        A run's table (:func:`run_table`), quantscope's column names.
    out : pathlib.Path
        The file; its extension must fit the format (``.parquet``/``.pq``, ``.csv``,
        ``.h5ad``).
    fmt : {"parquet", "csv", "anndata"}
        The format.
    uns : dict, optional
        Run metadata for AnnData's ``uns``.
    naming : {"cellprofiler", "quantscope"}, optional
        Column names: CellProfiler's (:func:`to_cellprofiler`; needs ``info.object_name``) or
        quantscope's own. Default: ``cellprofiler`` for Parquet and CSV, ``quantscope`` for
        AnnData.
    info : TableInfo, optional
        What the table holds (:func:`describe_run_table`).
    drop_uninformative : bool
        Leave out the features :func:`uninformative_columns` lists.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    out = Path(out)
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown format {fmt!r} (use parquet, csv or anndata)")
    implied = format_for_path(out)
    if implied != fmt:
        exts = " or ".join(EXPORT_FORMATS[fmt])
        what = f"is for {implied}" if implied else "is not one quantscope writes"
        raise InvalidInput(
            f"{out}: the file name's extension {what}, but the format is {fmt}; name the file "
            f"*{exts} (or choose the format that fits the name)"
        )
    if naming is None:
        naming = "quantscope" if fmt == "anndata" else "cellprofiler"
    if naming not in NAMINGS:
        raise InvalidInput(f"unknown naming {naming!r} (use {' or '.join(NAMINGS)})")
    info = info or TableInfo()
    if naming == "cellprofiler":
        table = to_cellprofiler(table, info)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        if fmt == "anndata":
            to_anndata(table, uns, info=info, drop_uninformative=drop_uninformative).write_h5ad(tmp)
        else:
            if drop_uninformative:
                table, _ = _drop(table)
            if fmt == "parquet":
                table.to_parquet(tmp, index=False)
            else:
                table.to_csv(tmp, index=False)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
