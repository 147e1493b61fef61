"""Reading an ISPDB document, and what every step of an import shares.

The hardened parser (:func:`parse`), the helpers that walk its elements, the
:class:`Notes` one import collects for the admin, and :class:`ImportFailed` for
a document that cannot become a domain file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lxml import etree

Data = dict[str, Any]


class ImportFailed(Exception):
    """The document cannot become a valid domain file; the message says why."""


class Notes:
    """The changes one import makes, as messages for the admin."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.messages.append(f"{where}: {message}" if where else message)

    def left_out(self, where: str, element: etree._Element, why: str) -> None:
        self.add(where, f"<{element.tag}> left out: {why}")


def parse(data: bytes) -> etree._Element:
    """The document's root, read with a hardened parser: no DTD, no entities, no network.

    An entity reference stays an unexpanded node (see :func:`note_entities`), so
    neither a billion laughs nor an external file can get into a domain file.
    """
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,  # the text of <port>99<!-- x -->3</port> is then "993"
        remove_pis=True,
    )
    return etree.fromstring(data, parser)


def elements(parent: etree._Element) -> Iterator[etree._Element]:
    """The child elements (entity references are nodes too, but not elements)."""
    return (child for child in parent if isinstance(child.tag, str))


def element_text(element: etree._Element) -> str:
    return (element.text or "").strip()


def child_text(parent: etree._Element, tag: str, where: str, notes: Notes) -> str | None:
    """The text of the first child ``tag`` (None if absent or empty); more are left out."""
    found = parent.findall(tag)
    for extra in found[1:]:
        notes.left_out(where, extra, f"more than one <{tag}>; the first is used")
    text = element_text(found[0]) if found else ""
    return text or None


def note_entities(root: etree._Element, notes: Notes) -> None:
    for entity in root.iter(etree.Entity):
        notes.add("", f"entity reference {entity.text} left out: entities are not expanded")
