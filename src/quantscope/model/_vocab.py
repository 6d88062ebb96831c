"""Controlled vocabularies of the OME 2016-06 schema, as string enums.

Each enum's values are exactly OME's, so a value can be written back to OME-XML unchanged; a
member compares equal to its string (``Immersion.OIL == "Oil"``). Parsing is forgiving about
case, spaces, hyphens and underscores (``"water dipping"`` -> ``Immersion.WATER_DIPPING``) and
knows a few common spellings (``"widefield"``, ``"confocal"``, ``"brightfield"``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

__all__ = [
    "AcquisitionMode",
    "Binning",
    "ContrastMethod",
    "Correction",
    "DetectorType",
    "FilterType",
    "IlluminationType",
    "Immersion",
    "LightSourceKind",
    "Medium",
]


def _squash(text: str) -> str:
    return re.sub(r"[\s_\-/.]+", "", text).lower()


class _OmeEnum(StrEnum):
    """A StrEnum that accepts its values in any case and spacing, plus a few aliases."""

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {}

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        key = _squash(value)
        for member in cls:
            if _squash(member.value) == key or _squash(member.name) == key:
                return member
        alias = cls._aliases().get(key)
        return cls(alias) if alias is not None else None

    @classmethod
    def parse(cls, value: Any) -> Any:
        """The member for ``value`` (a member, its value in any spelling), or None if unknown."""
        if value is None:
            return None
        raw = getattr(value, "value", value)
        try:
            return cls(str(raw))
        except ValueError:
            return None


class Immersion(_OmeEnum):
    """Immersion medium an objective is designed for (OME ``Objective@Immersion``)."""

    OIL = "Oil"
    WATER = "Water"
    WATER_DIPPING = "WaterDipping"
    AIR = "Air"
    MULTI = "Multi"
    GLYCEROL = "Glycerol"
    OTHER = "Other"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {
            "dry": "Air",
            "glycerin": "Glycerol",
            "dipping": "WaterDipping",
            "silicone": "Other",
        }


class Medium(_OmeEnum):
    """Medium between objective and sample in use (OME ``ObjectiveSettings@Medium``)."""

    AIR = "Air"
    OIL = "Oil"
    WATER = "Water"
    GLYCEROL = "Glycerol"
    OTHER = "Other"


class Correction(_OmeEnum):
    """Optical correction of an objective (OME ``Objective@Correction``)."""

    UV = "UV"
    PLAN_APO = "PlanApo"
    PLAN_FLUOR = "PlanFluor"
    SUPER_FLUOR = "SuperFluor"
    VIOLET_CORRECTED = "VioletCorrected"
    ACHRO = "Achro"
    ACHROMAT = "Achromat"
    FLUOR = "Fluor"
    FL = "Fl"
    FLUAR = "Fluar"
    NEOFLUAR = "Neofluar"
    FLUOTAR = "Fluotar"
    APO = "Apo"
    PLAN_NEOFLUAR = "PlanNeofluar"
    OTHER = "Other"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"planapochromat": "PlanApo", "apochromat": "Apo", "planfluorite": "PlanFluor"}


class IlluminationType(_OmeEnum):
    """How the sample is lit (OME ``Channel@IlluminationType``)."""

    TRANSMITTED = "Transmitted"
    EPIFLUORESCENCE = "Epifluorescence"
    OBLIQUE = "Oblique"
    NON_LINEAR = "NonLinear"
    OTHER = "Other"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"epi": "Epifluorescence", "reflected": "Epifluorescence", "trans": "Transmitted"}


class ContrastMethod(_OmeEnum):
    """Contrast method of a channel (OME ``Channel@ContrastMethod``)."""

    BRIGHTFIELD = "Brightfield"
    PHASE = "Phase"
    DIC = "DIC"
    HOFFMAN_MODULATION = "HoffmanModulation"
    OBLIQUE_ILLUMINATION = "ObliqueIllumination"
    POLARIZED_LIGHT = "PolarizedLight"
    DARKFIELD = "Darkfield"
    FLUORESCENCE = "Fluorescence"
    OTHER = "Other"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"phasecontrast": "Phase", "differentialinterferencecontrast": "DIC"}


class AcquisitionMode(_OmeEnum):
    """Microscopy technique of a channel (OME ``Channel@AcquisitionMode``)."""

    WIDE_FIELD = "WideField"
    LASER_SCANNING_CONFOCAL = "LaserScanningConfocalMicroscopy"
    SPINNING_DISK_CONFOCAL = "SpinningDiskConfocal"
    SLIT_SCAN_CONFOCAL = "SlitScanConfocal"
    MULTI_PHOTON = "MultiPhotonMicroscopy"
    STRUCTURED_ILLUMINATION = "StructuredIllumination"
    SINGLE_MOLECULE_IMAGING = "SingleMoleculeImaging"
    TOTAL_INTERNAL_REFLECTION = "TotalInternalReflection"
    FLUORESCENCE_LIFETIME = "FluorescenceLifetime"
    SPECTRAL_IMAGING = "SpectralImaging"
    FCS = "FluorescenceCorrelationSpectroscopy"
    NSOM = "NearFieldScanningOpticalMicroscopy"
    SHG = "SecondHarmonicGenerationImaging"
    PALM = "PALM"
    STORM = "STORM"
    STED = "STED"
    TIRF = "TIRF"
    FSM = "FSM"
    LCM = "LCM"
    OTHER = "Other"
    BRIGHT_FIELD = "BrightField"
    SWEPT_FIELD_CONFOCAL = "SweptFieldConfocal"
    SPIM = "SPIM"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {
            "widefieldmicroscopy": "WideField",
            "confocal": "LaserScanningConfocalMicroscopy",
            "lsm": "LaserScanningConfocalMicroscopy",
            "spinningdisk": "SpinningDiskConfocal",
            "twophoton": "MultiPhotonMicroscopy",
            "multiphoton": "MultiPhotonMicroscopy",
            "sim": "StructuredIllumination",
            "lightsheet": "SPIM",
        }


class Binning(_OmeEnum):
    """Detector binning (OME ``DetectorSettings@Binning``)."""

    B1X1 = "1x1"
    B2X2 = "2x2"
    B4X4 = "4x4"
    B8X8 = "8x8"
    OTHER = "Other"


class DetectorType(_OmeEnum):
    """Kind of detector (OME ``Detector@Type``)."""

    CCD = "CCD"
    INTENSIFIED_CCD = "IntensifiedCCD"
    ANALOG_VIDEO = "AnalogVideo"
    PMT = "PMT"
    PHOTODIODE = "Photodiode"
    SPECTROSCOPY = "Spectroscopy"
    LIFETIME_IMAGING = "LifetimeImaging"
    CORRELATION_SPECTROSCOPY = "CorrelationSpectroscopy"
    FTIR = "FTIR"
    EMCCD = "EMCCD"
    APD = "APD"
    CMOS = "CMOS"
    EBCCD = "EBCCD"
    OTHER = "Other"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"scmos": "CMOS", "camera": "Other", "hyd": "Other", "gaasp": "PMT"}


class FilterType(_OmeEnum):
    """Kind of filter (OME ``Filter@Type``)."""

    DICHROIC = "Dichroic"
    LONG_PASS = "LongPass"
    SHORT_PASS = "ShortPass"
    BAND_PASS = "BandPass"
    MULTI_PASS = "MultiPass"
    NEUTRAL_DENSITY = "NeutralDensity"
    TUNEABLE = "Tuneable"
    OTHER = "Other"


class LightSourceKind(_OmeEnum):
    """Which OME light-source element a light source is."""

    LASER = "Laser"
    ARC = "Arc"
    FILAMENT = "Filament"
    LED = "LightEmittingDiode"
    GENERIC = "GenericExcitationSource"
