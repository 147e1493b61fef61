"""The domain file's text, and ``mail-autoconf import`` around it.

:func:`to_yaml` and :func:`convert` (one parsed document as a domain file's
text); then the command: :func:`convert_file` for one source, :func:`file_names`
for the files written, :func:`import_main` for a file or a folder of them, with
warnings on stderr and an exit code.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import yaml
from lxml import etree

from autoconf.exits import Exit, counted
from autoconf.folder import load_file
from autoconf.ispdb.document import Data, ImportFailed, parse
from autoconf.ispdb.provider import domain_data

# ISPDB files are a few kilobytes; anything far larger is not one.
MAX_FILE_BYTES = 1024 * 1024


# ---------------------------------------------------------------------------
# YAML


def _one_line(text: str) -> str:
    """Text safe inside a YAML comment: no line breaks of any kind YAML knows."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", text)


def to_yaml(data: Data, source_name: str, warnings: Sequence[str]) -> str:
    source = _one_line(source_name)
    header = [f"# Source: {source} (Thunderbird ISPDB), converted by `mail-autoconf import`."]
    if warnings:
        header.append(
            "# What the import changed (docs/domain-files.md, Importing Thunderbird ISPDB):"
        )
        header += [f"#   - {_one_line(w)}" for w in warnings]
    # A wide line: a long scope or URL stays on one line, as an admin would write it.
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=4096)
    return "\n".join(header) + "\n" + body


def convert(root: etree._Element, source_name: str) -> tuple[str, list[str]]:
    """One clientConfig document as the text of a domain file, and the warnings."""
    data, warnings = domain_data(root)
    return to_yaml(data, source_name, warnings), warnings


# ---------------------------------------------------------------------------
# The command


@dataclass(frozen=True, slots=True)
class Converted:
    source: Path
    provider_id: str
    text: str
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Failed:
    source: Path
    reason: str


class UsageError(Exception):
    pass


def _source_files(source: Path) -> list[Path]:
    if not source.is_dir():
        return [source]
    files = sorted(
        p
        for p in source.iterdir()
        if p.suffix.lower() == ".xml" and p.is_file() and not p.name.startswith(".")
    )
    if not files:
        raise UsageError("no .xml files in this folder")
    return files


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create the folder ({exc.strerror or exc})") from None


def convert_file(path: Path) -> Converted | Failed:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return Failed(path, f"larger than {MAX_FILE_BYTES // 1024} KiB: not an ISPDB file")
        data = path.read_bytes()
    except OSError as exc:
        return Failed(path, f"cannot read: {exc.strerror or exc}")
    try:
        root = parse(data)
    except etree.XMLSyntaxError as exc:
        return Failed(path, f"not well-formed XML: {exc}")
    try:
        content, warnings = domain_data(root)
    except ImportFailed as exc:
        return Failed(path, f"cannot import: {exc}")
    provider_id = content.get("provider", {}).get("id") or content["domains"][0]
    text = to_yaml(content, path.name, warnings)
    return Converted(path, provider_id, text, tuple(warnings))


def _safe_stem(name: str) -> str:
    """A file name stem that is no path and no hidden file."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "provider"


def file_names(converted: Sequence[Converted]) -> dict[Path, str]:
    """``<provider id>.yaml``; sources that share an id (zoho.eu, zoho.in: id
    zoho.com) are named after their source file instead, so none overwrites another."""
    ids = Counter(c.provider_id for c in converted)
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for item in converted:
        stem = _safe_stem(item.provider_id if ids[item.provider_id] == 1 else item.source.stem)
        name, number = f"{stem}.yaml", 1
        while name in taken:
            number += 1
            name = f"{stem}-{number}.yaml"
        taken.add(name)
        names[item.source] = name
    return names


def _write(path: Path, text: str, force: bool) -> bool:
    """Write ``path`` whole (a watching service never reads half a file); False if it
    exists and ``force`` is not given."""
    if path.exists() and not force:
        return False
    temporary = path.with_name(f".{path.name}.importing")  # hidden: the registry skips it
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return True


def _convert_all(sources: list[Path], progress: bool) -> list[Converted | Failed]:
    if not progress:
        return [convert_file(path) for path in sources]
    with click.progressbar(sources, label="Importing", file=sys.stderr) as bar:
        return [convert_file(path) for path in bar]


def import_main(source: Path, out: Path, *, force: bool) -> int:
    """Import a file, or every .xml file of a folder, into ``out``; 0 ok, 1 failures
    or files skipped because they exist, 2 usage."""
    try:
        sources = _source_files(source)
        _prepare_out(out)
    except UsageError as exc:
        click.echo(f"{source}: {exc}", err=True)
        return Exit.USAGE
    # Messages wait until the progress bar is done, so that they do not cut through it.
    results = _convert_all(sources, progress=source.is_dir())
    names = file_names([r for r in results if isinstance(r, Converted)])
    tally: Counter[str] = Counter()
    for result in results:
        outcome, warnings = _write_and_report(result, out, names, force)
        tally[outcome] += 1
        tally["warnings"] += warnings
    click.echo(
        f"{counted(len(sources), 'file')}: {tally['imported']} imported, "
        f"{tally['skipped']} skipped (exists; --force overwrites), "
        f"{tally['failed']} failed, {counted(tally['warnings'], 'warning')}",
        err=True,
    )
    return Exit.INVALID if tally["failed"] or tally["skipped"] else Exit.OK


def _write_and_report(
    result: Converted | Failed, out: Path, names: dict[Path, str], force: bool
) -> tuple[str, int]:
    """Write one result and say what happened: imported, skipped or failed, and the
    number of warnings shown (none for a file not written: they would be about nothing)."""
    if isinstance(result, Failed):
        click.echo(f"{result.source}: error: {result.reason}", err=True)
        return "failed", 0
    target = out / names[result.source]
    if not _write(target, result.text, force):
        click.echo(f"{result.source}: skipped: {target} exists", err=True)
        return "skipped", 0
    for warning in result.warnings:
        click.echo(f"{result.source}: warning: {warning}", err=True)
    # The file is valid by construction; `check` is the judge all the same.
    errors = [p for p in load_file(target)[1] if p.is_error]
    for problem in errors:
        click.echo(f"{result.source}: error: {problem}", err=True)
    return ("failed" if errors else "imported"), len(result.warnings)
