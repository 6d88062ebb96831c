"""Writing quantscope's OME-XML must not change how other XML documents are written: with
ElementTree's process-wide default namespace set to OME, vendor elements without a namespace
kept in an OME document moved silently into the OME namespace (schema-invalid)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from quantscope.metadata import image_to_ome_xml
from quantscope.metadata._export import _without_annotations
from quantscope.model import Image

OME = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
DOC = (
    f'<OME xmlns="{OME}"><StructuredAnnotations/><Image ID="Image:0">'
    '<Vendor xmlns=""><Setting>1</Setting></Vendor></Image></OME>'
)


def test_vendor_elements_keep_no_namespace_after_quantscope_wrote_ome_xml() -> None:
    image_to_ome_xml(Image(id="i", name="x", shape=(1, 1, 1, 2, 2), dtype="uint8"))
    root = ET.fromstring(_without_annotations(DOC))
    assert root.find(f"{{{OME}}}Image/Vendor/Setting") is not None  # still no namespace
    assert root.find(f"{{{OME}}}Image/{{{OME}}}Vendor") is None
    assert root.find(f"{{{OME}}}StructuredAnnotations") is None


def test_our_ome_xml_has_ome_as_its_default_namespace() -> None:
    xml = image_to_ome_xml(Image(id="i", name="a<ome:b", shape=(1, 1, 1, 2, 2), dtype="uint8"))
    assert f'<OME xmlns="{OME}"' in xml and "<ome:" not in xml
    root = ET.fromstring(xml.split("\n", 1)[1])
    assert root.find(f"{{{OME}}}Image").get("Name") == "a<ome:b"
