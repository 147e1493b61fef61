"""Test helpers: build providers from YAML text the way the service does."""

from __future__ import annotations

from pathlib import Path

from autoconf import yamlio
from autoconf.model import Provider, build_provider


def provider_from_yaml(text: str, base_dir: Path = Path(".")) -> Provider:
    tree, problems = yamlio.load(text, "test.yaml")
    assert not problems, problems
    provider, problems = build_provider(tree, "test.yaml", base_dir)
    assert provider is not None, [str(p) for p in problems]
    return provider


def server_yaml(kind: str, security: str, port: int | None = None, **extra: str) -> str:
    lines = [f"  - type: {kind}", f"    host: {kind}.example.com", f"    security: {security}"]
    if port is not None:
        lines.append(f"    port: {port}")
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def provider_text(incoming: str, outgoing: str, extra: str = "") -> str:
    return f"domains: [example.com]\nincoming:\n{incoming}outgoing:\n{outgoing}{extra}"
