"""Property test: model -> OME-XML (valid against the 2016-06 schema) -> model is lossless."""

from __future__ import annotations

import math
from datetime import UTC
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ome_types import from_xml

from quantscope.metadata import from_ome, image_to_ome_xml
from quantscope.model import (
    Acquisition,
    AcquisitionMode,
    Binning,
    Channel,
    ContrastMethod,
    Correction,
    Detector,
    DetectorType,
    Dichroic,
    Filter,
    FilterType,
    IlluminationType,
    Image,
    ImagingEnvironment,
    Immersion,
    Instrument,
    LightSource,
    LightSourceKind,
    Medium,
    Objective,
    ObjectiveSettings,
    PlatePosition,
    StagePosition,
)

_TEXT = (
    st.text(
        alphabet=st.sampled_from(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_/.µ"
        ),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)


def _opt(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | s


def _pos(lo: float = 1e-3, hi: float = 1e5) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


_ANY = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
_FRACTION = st.floats(0, 1, allow_nan=False)
_PERCENT = st.floats(0, 100, allow_nan=False)
_SOURCE_TYPES = {
    LightSourceKind.LASER: ["SolidState", "Gas", "Dye", "Semiconductor", "Other"],
    LightSourceKind.ARC: ["Hg", "Xe", "HgXe"],
    LightSourceKind.FILAMENT: ["Incandescent", "Halogen"],
}


@st.composite
def light_source(draw: st.DrawFn, n: int) -> LightSource:
    kind = draw(st.sampled_from(list(LightSourceKind)))
    laser = kind is LightSourceKind.LASER
    types = _SOURCE_TYPES.get(kind)
    return LightSource(
        id=f"LightSource:{n}",
        kind=kind,
        manufacturer=draw(_opt(_TEXT)),
        model=draw(_opt(_TEXT)),
        serial_number=draw(_opt(_TEXT)),
        power_mw=draw(_opt(_pos())),
        type=draw(_opt(st.sampled_from(types))) if types else None,
        wavelength_nm=draw(_opt(_pos(200, 2000))) if laser else None,
        tuneable=draw(_opt(st.booleans())) if laser else None,
        pulse=draw(_opt(st.sampled_from(["CW", "Single", "ModeLocked"]))) if laser else None,
    )


@st.composite
def instrument(draw: st.DrawFn) -> Instrument:
    n_src, n_det, n_filt, n_dich = (draw(st.integers(0, 2)) for _ in range(4))
    return Instrument(
        manufacturer=draw(_opt(_TEXT)),
        model=draw(_opt(_TEXT)),
        serial_number=draw(_opt(_TEXT)),
        microscope_type=draw(_opt(st.sampled_from(["Upright", "Inverted", "Dissection"]))),
        # OME groups light sources by element (lasers, arcs, filaments, LEDs, generic): the
        # model keeps that order too
        light_sources=tuple(
            sorted(
                (draw(light_source(i)) for i in range(n_src)),
                key=lambda s: list(LightSourceKind).index(s.kind),
            )
        ),
        detectors=tuple(
            Detector(
                id=f"Detector:{i}",
                manufacturer=draw(_opt(_TEXT)),
                model=draw(_opt(_TEXT)),
                type=draw(_opt(st.sampled_from(list(DetectorType)))),
                gain=draw(_opt(_ANY)),
                offset=draw(_opt(_ANY)),
                voltage_v=draw(_opt(_ANY)),
                zoom=draw(_opt(_ANY)),
                amplification_gain=draw(_opt(_ANY)),
            )
            for i in range(n_det)
        ),
        filters=tuple(
            Filter(
                id=f"Filter:{i}",
                model=draw(_opt(_TEXT)),
                type=draw(_opt(st.sampled_from(list(FilterType)))),
                filter_wheel=draw(_opt(_TEXT)),
                cut_in_nm=draw(_opt(_pos(200, 2000))),
                cut_out_nm=draw(_opt(_pos(200, 2000))),
                transmittance=draw(_opt(_FRACTION)),
            )
            for i in range(n_filt)
        ),
        dichroics=tuple(
            Dichroic(id=f"Dichroic:{i}", model=draw(_opt(_TEXT))) for i in range(n_dich)
        ),
    )


@st.composite
def channel(draw: st.DrawFn, index: int, inst: Instrument | None) -> Channel:
    src = draw(_opt(st.sampled_from(inst.light_sources))) if inst and inst.light_sources else None
    det = draw(_opt(st.sampled_from(inst.detectors))) if inst and inst.detectors else None
    filters = [f.id for f in inst.filters] if inst else []
    dichroics = [d.id for d in inst.dichroics] if inst else []
    return Channel(
        index=index,
        name=draw(_TEXT),
        color=draw(_opt(st.from_regex(r"[0-9A-F]{6}", fullmatch=True))),
        excitation_wavelength_nm=draw(_opt(_pos(200, 2000))),
        emission_wavelength_nm=draw(_opt(_pos(200, 2000))),
        exposure_time_s=draw(_opt(st.floats(0, 1e3, allow_nan=False))),
        fluor=draw(_opt(_TEXT)),
        illumination_type=draw(_opt(st.sampled_from(list(IlluminationType)))),
        contrast_method=draw(_opt(st.sampled_from(list(ContrastMethod)))),
        acquisition_mode=draw(_opt(st.sampled_from(list(AcquisitionMode)))),
        pinhole_size_um=draw(_opt(st.floats(0, 1e3, allow_nan=False))),
        nd_filter=draw(_opt(st.floats(0, 10, allow_nan=False))),
        light_source_id=src.id if src else None,
        light_source_wavelength_nm=draw(_opt(_pos(200, 2000))) if src else None,
        light_source_attenuation=draw(_opt(_FRACTION)) if src else None,
        detector_id=det.id if det else None,
        detector_gain=draw(_opt(_ANY)) if det else None,
        detector_offset=draw(_opt(_ANY)) if det else None,
        detector_binning=draw(_opt(st.sampled_from(list(Binning)))) if det else None,
        detector_voltage_v=draw(_opt(_ANY)) if det else None,
        detector_read_out_rate_mhz=draw(_opt(st.floats(0, 1e3, allow_nan=False))) if det else None,
        excitation_filter_ids=tuple(draw(st.lists(st.sampled_from(filters), unique=True)))
        if filters
        else (),
        dichroic_id=draw(_opt(st.sampled_from(dichroics))) if dichroics else None,
        emission_filter_ids=tuple(draw(st.lists(st.sampled_from(filters), unique=True)))
        if filters
        else (),
    )


@st.composite
def images(draw: st.DrawFn) -> Image:
    inst = draw(_opt(instrument()))
    if inst == Instrument():  # an empty instrument reads back as none
        inst = None
    objective = draw(
        _opt(
            st.builds(
                Objective,
                id=st.just("Objective:0"),
                manufacturer=_opt(_TEXT),
                model=_opt(_TEXT),
                serial_number=_opt(_TEXT),
                nominal_magnification=_opt(_pos(1, 200)),
                calibrated_magnification=_opt(_pos(1, 200)),
                lens_na=_opt(_pos(0.01, 1.7)),
                immersion=_opt(st.sampled_from(list(Immersion))),
                correction=_opt(st.sampled_from(list(Correction))),
                working_distance_um=_opt(st.floats(0, 1e5, allow_nan=False)),
                iris=_opt(st.booleans()),
            )
        )
    )
    settings_ = None
    if objective is not None:
        settings_ = draw(
            _opt(
                st.builds(
                    ObjectiveSettings,
                    medium=st.sampled_from(list(Medium)),
                    refractive_index=_opt(_pos(1, 2)),
                    correction_collar=_opt(_ANY),
                )
            )
        )
    n_channels = draw(st.integers(0, 3))
    channels = tuple(draw(channel(i, inst)) for i in range(n_channels))
    labelled = draw(st.booleans())
    stage = draw(
        _opt(
            st.builds(
                StagePosition,
                x_um=_ANY,
                y_um=_opt(_ANY),
                z_um=_opt(_ANY),
                label=_TEXT if labelled else st.none(),
            )
        )
    )
    if stage is not None and stage.label is None and not channels:
        stage = None  # plane positions need a plane, and a plane needs a channel here
    environment = draw(
        _opt(
            st.builds(
                ImagingEnvironment,
                temperature_c=st.floats(-20, 60, allow_nan=False),
                air_pressure_mbar=_opt(_pos(1, 2000)),
                humidity_percent=_opt(_PERCENT),
                co2_percent=_opt(_PERCENT),
            )
        )
    )
    return Image(
        id="img",
        name=draw(_TEXT),
        shape=(
            draw(st.integers(1, 3)),
            max(1, n_channels),
            draw(st.integers(1, 3)),
            draw(st.integers(1, 64)),
            draw(st.integers(1, 64)),
        ),
        dtype=draw(st.sampled_from(["uint8", "uint16", "float32", "int16"])),
        physical_size_x_um=draw(_opt(_pos())),
        physical_size_y_um=draw(_opt(_pos())),
        physical_size_z_um=draw(_opt(_pos())),
        significant_bits=draw(_opt(st.integers(1, 16))),
        description=draw(_opt(_TEXT)),
        channels=channels,
        acquisition=Acquisition(
            acquired_at=draw(_opt(st.datetimes(timezones=st.just(UTC)))),
            instrument=inst,
            objective=objective,
            objective_settings=settings_,
            environment=environment,
            stage=stage,
            time_increment_s=draw(_opt(st.floats(0, 1e4, allow_nan=False))),
        ),
        position=draw(
            _opt(
                st.builds(
                    PlatePosition,
                    plate=_TEXT,
                    row=st.integers(0, 31),
                    column=st.integers(0, 47),
                    field=st.integers(1, 20),
                )
            )
        ),
    )


def _same(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats within 1e-12 relative (percent values pass through OME's fractions)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images())
def test_model_to_ome_xml_to_model(image: Image) -> None:
    xml = image_to_ome_xml(image)
    ome = from_xml(xml, validate=True)  # valid against the OME 2016-06 XSD
    md = from_ome(ome, 0)
    back = image.model_copy(
        update={
            "name": md.name,
            "physical_size_x_um": md.physical_size[0],
            "physical_size_y_um": md.physical_size[1],
            "physical_size_z_um": md.physical_size[2],
            "significant_bits": md.significant_bits,
            "description": md.description,
            "channels": tuple(md.channels),
            "acquisition": md.acquisition,
            "position": md.position,
        }
    )
    # OME's Channel@Color defaults to white (-1): a channel without a color reads back white
    expected = image.model_copy(
        update={
            "channels": tuple(
                c if c.color else c.model_copy(update={"color": "FFFFFF"}) for c in image.channels
            )
        }
    )
    _same(back.model_dump(), expected.model_dump())
    assert from_ome(from_xml(image_to_ome_xml(back)), 0) == md  # stable once written
