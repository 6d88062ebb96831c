"""Standard exports of an image's metadata: OME-XML, JSON (with a JSON Schema) and JSON-LD.

* OME-XML: :func:`~quantscope.metadata.image_to_ome_xml` (valid against the OME 2016-06 XSD),
  annotations added as an OME ``MapAnnotation`` (namespace ``rembi:1.5``) and tags as
  ``TagAnnotation`` s; the datasets the image belongs to (its ``dataset`` annotations) as OME
  ``Dataset`` elements with an ``ImageRef``, and as ``schema:isPartOf`` in JSON-LD. The
  annotations passed in are those in effect (the image's, its plate's and its datasets').
* JSON: :func:`image_record` — the model (:class:`~quantscope.model.Image`) and its
  annotations; :func:`metadata_json_schema` is its JSON Schema (draft 2020-12), published in the
  package as ``data/image-metadata.schema.json``.
* JSON-LD: :func:`image_to_jsonld` — a ``schema:ImageObject`` with REMBI modules. REMBI
  publishes no RDF vocabulary, so its module and field terms use the prefix ``rembi:`` bound to
  the BioImage Archive's REMBI model reference; ontology terms are ``schema:DefinedTerm`` s with
  their OBO PURL / Cellosaurus IRI.
"""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from ..errors import CorruptFile, InvalidInput
from ..model import TAG_KEY, Annotation, Image
from ._keys import key_spec
from ._ome import from_ome
from ._ome_xml import image_to_ome_xml, ome_tostring

__all__ = [
    "EXPORT_FORMATS",
    "ImageRecord",
    "enrich",
    "export_metadata",
    "image_record",
    "image_to_jsonld",
    "metadata_json_schema",
    "ome_xml_with_annotations",
    "stored_ome_xml",
]

EXPORT_FORMATS = ("ome-xml", "json", "jsonld")
SCHEMA_ID = "https://quantscope.dev/schemas/image-metadata/1.json"
_OME_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
_DATASET_KEY = "dataset"  # dataset membership (quantscope.catalog.DATASET_KEY)
_REMBI_NS = "https://www.ebi.ac.uk/bioimage-archive/rembi-model-reference/#"
_CONTEXT = {
    "schema": "https://schema.org/",
    "rembi": _REMBI_NS,
    "obo": "http://purl.obolibrary.org/obo/",
    "ome": _OME_NS + "#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


class ImageRecord(BaseModel):
    """An image's metadata with its annotations: what ``--format json`` writes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    quantscope_metadata: int = 1
    image: Image
    annotations: tuple[Annotation, ...] = ()


def image_record(image: Image, annotations: Iterable[Annotation] = ()) -> dict[str, Any]:
    """The JSON form of ``image`` and its annotations (valid against
    :func:`metadata_json_schema`)."""
    return ImageRecord(image=image, annotations=tuple(annotations)).model_dump(mode="json")


def metadata_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of :func:`image_record` output, from the pydantic model."""
    schema = ImageRecord.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


# ------------------------------------------------------------------------------ OME-XML
def ome_xml_with_annotations(image: Image, annotations: Iterable[Annotation] = ()) -> str:
    """:func:`image_to_ome_xml` plus the annotations: key-value pairs as one
    ``MapAnnotation`` (namespace ``rembi:1.5``; ontology terms as ``label [CURIE]``, quantities
    with their unit) and each tag as a ``TagAnnotation``, all referenced from the Image."""
    anns = list(annotations)
    xml = image_to_ome_xml(image)
    if not anns:
        return xml
    root = ET.fromstring(xml.split("\n", 1)[1])
    q = f"{{{_OME_NS}}}"
    img = root.find(f"{q}Image")
    assert img is not None
    # datasets the image belongs to: OME Dataset elements (the first children of OME)
    for k, name in enumerate(_datasets(anns)):
        ds = ET.Element(f"{q}Dataset", ID=f"Dataset:{k}", Name=name)
        ET.SubElement(ds, f"{q}ImageRef", ID=img.get("ID", "Image:0"))
        root.insert(k, ds)
    structured = ET.Element(f"{q}StructuredAnnotations")
    refs: list[str] = []
    pairs = [a for a in anns if a.key not in (TAG_KEY, _DATASET_KEY)]
    if pairs:
        ma = ET.SubElement(
            structured, f"{q}MapAnnotation", ID="Annotation:0", Namespace="rembi:1.5"
        )
        value = ET.SubElement(ma, f"{q}Value")
        for a in pairs:
            text = a.value or ""
            if a.curie:
                text = f"{text} [{a.curie}]".strip()
            if a.num_value is not None and a.unit:
                text = f"{text} (= {a.num_value:g} {a.unit})"
            m = ET.SubElement(value, f"{q}M", K=a.key)
            m.text = text
        refs.append("Annotation:0")
    for n, a in enumerate((a for a in anns if a.key == TAG_KEY), start=1):
        ta = ET.SubElement(structured, f"{q}TagAnnotation", ID=f"Annotation:{n}")
        ET.SubElement(ta, f"{q}Value").text = a.value
        refs.append(f"Annotation:{n}")
    # Image children: ... Pixels, ROIRef*, MicrobeamManipulationRef*, AnnotationRef*
    for ref in refs:
        ET.SubElement(img, f"{q}AnnotationRef", ID=ref)
    # OME children: ... Instrument*, Image*, StructuredAnnotations?, ROI*, BinaryOnly?
    if refs:
        root.append(structured)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ome_tostring(root) + "\n"


def _datasets(anns: Sequence[Annotation]) -> list[str]:
    """Names of the datasets an image belongs to (its ``dataset`` annotations)."""
    return sorted(
        {a.value for a in anns if a.key == _DATASET_KEY and a.target_kind == "image" and a.value}
    )


# ------------------------------------------------------------------------------ JSON-LD
def _iri(curie: str) -> str:
    if curie.startswith("CVCL_"):
        return f"https://www.cellosaurus.org/{curie}"
    prefix, _, local = curie.partition(":")
    return f"http://purl.obolibrary.org/obo/{prefix}_{local}"


def _qv(value: float | int | None, unit: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"@type": "schema:QuantitativeValue", "schema:value": value, "schema:unitText": unit}


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, [], {}, "")}


def _ld_value(a: Annotation) -> Any:
    if a.curie:
        return _clean(
            {
                "@type": "schema:DefinedTerm",
                "@id": _iri(a.curie),
                "schema:name": a.value,
                "schema:termCode": a.curie,
            }
        )
    if a.num_value is not None and a.unit:
        return _clean(
            {
                "@type": "schema:QuantitativeValue",
                "schema:value": a.num_value,
                "schema:unitText": a.unit,
                "schema:description": a.value,
            }
        )
    return a.value


def image_to_jsonld(image: Image, annotations: Iterable[Annotation] = ()) -> dict[str, Any]:
    """JSON-LD (schema.org + REMBI modules) describing ``image`` and its annotations."""
    acq = image.acquisition
    anns = list(annotations)
    modules, keywords = _rembi_modules(anns)
    acquisition = modules.pop("image_acquisition", {"@type": "rembi:ImageAcquisition"})
    acquisition.update(_clean({"rembi:imagingInstrument": _ld_instrument(image)}))
    image_data = modules.pop("image_data", {"@type": "rembi:ImageData"})
    image_data.update(_ld_image_data(image))
    _, _, _, y, x = image.shape
    pos = image.position
    doc: dict[str, Any] = {
        "@context": _CONTEXT,
        "@id": f"urn:quantscope:image:{image.id}",
        "@type": "schema:ImageObject",
        "schema:identifier": image.id,
        "schema:name": image.name,
        "schema:description": image.description,
        "schema:dateCreated": acq.acquired_at.isoformat() if acq.acquired_at else None,
        "schema:encodingFormat": "OME-Zarr (NGFF 0.5)",
        "schema:contentUrl": image.store_path or None,
        "schema:width": _qv(x, "pixel"),
        "schema:height": _qv(y, "pixel"),
        "schema:keywords": sorted(set(keywords)),
        "schema:isPartOf": [
            {
                "@type": "schema:Dataset",
                "@id": f"urn:quantscope:dataset:{quote(name, safe='')}",
                "schema:name": name,
            }
            for name in _datasets(anns)
        ],
        "rembi:imageAcquisition": acquisition,
        "rembi:imageData": image_data,
        "rembi:specimen": modules.pop("specimen", None),
        "rembi:biosample": modules.pop("biosample", None),
        "rembi:study": modules.pop("study", None),
        "ome:Well": _clean(
            {"ome:Plate": pos.plate, "schema:name": pos.well, "ome:Field": pos.field}
        )
        if pos
        else None,
    }
    for module, body in modules.items():
        doc[f"rembi:{_lower_camel(module)}"] = body
    return _clean(doc)


def _rembi_modules(anns: list[Annotation]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The annotations as REMBI modules (module name -> its JSON-LD body, in the order met),
    and the tags as keywords; dataset membership is left out (``schema:isPartOf``)."""
    modules: dict[str, dict[str, Any]] = {}
    keywords: list[str] = []
    for a in anns:
        if a.key == TAG_KEY:
            keywords.append(a.value or "")
            continue
        if a.key == _DATASET_KEY:  # membership: schema:isPartOf
            continue
        spec = key_spec(a.key)
        module = (spec.rembi if spec is not None else None) or "custom"
        field = a.key.split(".", 1)[1] if "." in a.key else a.key
        slot = modules.setdefault(module, {"@type": f"rembi:{_camel(module)}"})
        term = f"rembi:{field}"
        v = _ld_value(a)
        if spec is not None and spec.multi:
            slot.setdefault(term, []).append(v)
        else:
            slot[term] = v
    return modules, keywords


def _ld_instrument(image: Image) -> dict[str, Any] | None:
    """The imaging instrument (microscope, objective, light sources, detectors), if known."""
    inst, obj = image.acquisition.instrument, image.acquisition.objective
    if inst is None and obj is None:
        return None
    return _clean(
        {
            "@type": "rembi:ImagingInstrument",
            "schema:manufacturer": inst.manufacturer if inst else None,
            "schema:model": inst.model if inst else None,
            "ome:MicroscopeType": inst.microscope_type if inst else None,
            "ome:Objective": _clean(
                {
                    "schema:manufacturer": obj.manufacturer,
                    "schema:model": obj.model,
                    "ome:NominalMagnification": obj.nominal_magnification,
                    "ome:LensNA": obj.lens_na,
                    "ome:Immersion": obj.immersion,
                    "ome:Correction": obj.correction,
                    "ome:WorkingDistance": _qv(obj.working_distance_um, "µm"),
                }
            )
            if obj
            else None,
            "ome:LightSource": [
                _clean(
                    {
                        "@type": f"ome:{s.kind.value}",
                        "schema:model": s.model,
                        "ome:Wavelength": _qv(s.wavelength_nm, "nm"),
                        "ome:Power": _qv(s.power_mw, "mW"),
                    }
                )
                for s in (inst.light_sources if inst else ())
            ],
            "ome:Detector": [
                _clean({"schema:model": d.model, "ome:Type": d.type})
                for d in (inst.detectors if inst else ())
            ],
        }
    )


def _ld_image_data(image: Image) -> dict[str, Any]:
    """The REMBI image data terms of ``image``: dimensions, pixel sizes, channels."""
    t, c, z, _, _ = image.shape
    channels = [
        _clean(
            {
                "@type": "ome:Channel",
                "schema:name": ch.name,
                "ome:Fluor": ch.fluor,
                "ome:ExcitationWavelength": _qv(ch.excitation_wavelength_nm, "nm"),
                "ome:EmissionWavelength": _qv(ch.emission_wavelength_nm, "nm"),
                "ome:ExposureTime": _qv(ch.exposure_time_s, "s"),
                "ome:IlluminationType": ch.illumination_type,
                "ome:ContrastMethod": ch.contrast_method,
                "ome:AcquisitionMode": ch.acquisition_mode,
            }
        )
        for ch in image.channels
    ]
    return _clean(
        {
            "rembi:dimensions": {"ome:SizeT": t, "ome:SizeC": c, "ome:SizeZ": z},
            "rembi:pixelSizeX": _qv(image.physical_size_x_um, "µm"),
            "rembi:pixelSizeY": _qv(image.physical_size_y_um, "µm"),
            "rembi:pixelSizeZ": _qv(image.physical_size_z_um, "µm"),
            "rembi:timeIncrement": _qv(image.acquisition.time_increment_s, "s"),
            "rembi:channel": channels,
        }
    )


def _camel(s: str) -> str:
    return "".join(p.capitalize() for p in s.split("_"))


def _lower_camel(s: str) -> str:
    c = _camel(s)
    return c[:1].lower() + c[1:]


# ------------------------------------------------------------------------ stored OME
def stored_ome_xml(root: Path, image: Image) -> str | None:
    """The OME-XML stored with ``image`` in the repository at ``root`` (None if absent)."""
    if not image.store_path:
        return None
    path = Path(root) / image.store_path / "OME" / "METADATA.ome.xml"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptFile(f"{path}: stored OME-XML cannot be read ({e})") from e


def _without_annotations(ome_xml: str) -> str:
    """The document without StructuredAnnotations, ROIs and references to them: vendor files
    carry hundreds of kB of original metadata there that the model does not use, and parsing
    it with ome-types costs ~10x more than the rest (250 ms vs 25 ms for the OME-TIFF test
    file)."""
    root = ET.fromstring(ome_xml.encode("utf-8"))
    ns = root.tag[1 : root.tag.index("}")] if root.tag.startswith("{") else ""
    q = f"{{{ns}}}" if ns else ""
    for tag in ("StructuredAnnotations", "ROI"):
        for el in root.findall(f"{q}{tag}"):
            root.remove(el)
    for el in root.iter():
        for ref in el.findall(f"{q}AnnotationRef") + el.findall(f"{q}ROIRef"):
            el.remove(ref)
    return ET.tostring(root, encoding="unicode")


def enrich(image: Image, ome_xml: str | None) -> Image:
    """``image`` (as the catalog holds it) completed from its stored OME-XML: the instrument's
    light sources, filters, dichroics and detectors, and each channel's references to them,
    which the catalog keeps only as per-channel columns. Values in ``image`` win.

    Raises
    ------
    CorruptFile
        The stored OME-XML is not valid XML.
    """
    if not ome_xml:
        return image
    from ome_types import from_xml

    try:
        slim = _without_annotations(ome_xml)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ome = from_xml(slim, validate=False)
    except Exception as e:  # ome-types raises several types for bad XML
        raise CorruptFile(f"image {image.id}: stored OME-XML cannot be parsed ({e})") from e
    index = image.sources[0].scene if len(image.sources) == 1 else 0
    if index >= len(ome.images):
        index = 0
    md = from_ome(ome, index)
    acq = image.acquisition
    update: dict[str, Any] = {}
    if md.acquisition.instrument is not None:
        base = acq.instrument.model_dump() if acq.instrument else {}
        rich = md.acquisition.instrument.model_dump()
        merged = {k: base.get(k) if base.get(k) not in (None, ()) else v for k, v in rich.items()}
        update["instrument"] = type(md.acquisition.instrument).model_validate(merged)
    if acq.objective is not None and md.acquisition.objective is not None:
        update["objective"] = acq.objective.model_copy(
            update={
                k: v
                for k, v in md.acquisition.objective.model_dump().items()
                if getattr(acq.objective, k) is None and v is not None
            }
        )
    channels = list(image.channels)
    if len(md.channels) == len(channels):
        channels = [
            ch.model_copy(
                update={
                    k: v
                    for k, v in src.model_dump().items()
                    if getattr(ch, k) in (None, ()) and v not in (None, ())
                }
            )
            for ch, src in zip(channels, md.channels, strict=True)
        ]
    return image.model_copy(
        update={
            "acquisition": acq.model_copy(update=update),
            "channels": tuple(channels),
            "significant_bits": image.significant_bits or md.significant_bits,
        }
    )


def export_metadata(image: Image, annotations: Sequence[Annotation] = (), fmt: str = "json") -> str:
    """``image`` and its annotations as text in ``fmt`` (ome-xml, json or jsonld).

    Raises
    ------
    InvalidInput
        Unknown format, or a dtype OME-XML cannot describe.
    """
    if fmt == "ome-xml":
        return ome_xml_with_annotations(image, annotations)
    if fmt == "json":
        return json.dumps(image_record(image, annotations), indent=2, ensure_ascii=False) + "\n"
    if fmt == "jsonld":
        return json.dumps(image_to_jsonld(image, annotations), indent=2, ensure_ascii=False) + "\n"
    raise InvalidInput(f"unknown export format {fmt!r} (use {', '.join(EXPORT_FORMATS)})")
