"""Small lxml helpers shared by the XML renderers."""

from __future__ import annotations

from lxml import etree


def child(
    parent: etree._Element, tag: str, text: str | int | None = None, **attrib: str
) -> etree._Element:
    """A child in its parent's namespace (so no ``xmlns=""`` appears), with text."""
    namespace = etree.QName(parent).namespace
    element = etree.SubElement(parent, f"{{{namespace}}}{tag}" if namespace else tag, attrib)
    if text is not None:
        element.text = str(text)
    return element


def serialize(root: etree._Element) -> str:
    """UTF-8 with an XML declaration and indentation, as a str for templating."""
    body: str = etree.tostring(root, encoding="unicode", pretty_print=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def default_ns_element(
    namespace: str, tag: str, parent: etree._Element | None = None
) -> etree._Element:
    """An element whose namespace is the default one (``xmlns="…"``), never a prefix."""
    nsmap = {None: namespace}  # lxml's stubs do not know the None key for the default
    if parent is None:
        return etree.Element(f"{{{namespace}}}{tag}", nsmap=nsmap)  # type: ignore[arg-type]
    return etree.SubElement(parent, f"{{{namespace}}}{tag}", nsmap=nsmap)  # type: ignore[arg-type]
