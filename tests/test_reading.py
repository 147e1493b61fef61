"""reading: only regular files inside the allowed folders, within their size limits."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from autoconf.folder import load_file
from autoconf.reading import Limits, ReadRefused, read_bounded

SERVERS = (
    "incoming: [{type: imap, host: imap.example.com, security: ssl}]\n"
    "outgoing: [{type: smtp, host: smtp.example.com, security: ssl}]\n"
)


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"hello")
    assert read_bounded(tmp_path / "a", 5, Limits.for_folder(tmp_path)) == b"hello"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ReadRefused, match=r"not a regular file \(a FIFO\)"):
        read_bounded(tmp_path / "pipe", 100, Limits.for_folder(tmp_path))


def test_a_socket_and_a_folder_are_refused(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        with pytest.raises(ReadRefused, match=r"\(a socket\)"):
            read_bounded(tmp_path / "sock", 100, Limits.for_folder(tmp_path))
    (tmp_path / "dir").mkdir()
    with pytest.raises(ReadRefused, match=r"\(a folder\)"):
        read_bounded(tmp_path / "dir", 100, Limits.for_folder(tmp_path))


def test_a_device_is_refused_even_in_an_allowed_folder(tmp_path: Path) -> None:
    limits = Limits.for_folder(tmp_path, [Path("/dev")])
    with pytest.raises(ReadRefused, match=r"\(a character device\)"):
        read_bounded(Path("/dev/zero"), 100, limits)


def test_symlinks_out_of_the_folder_are_refused(tmp_path: Path) -> None:
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("secret")
    (inside / "link").symlink_to(outside / "secret")
    (inside / "up").symlink_to("../out/secret")
    for name in ("link", "up"):
        with pytest.raises(ReadRefused, match="lies outside the domain folder"):
            read_bounded(inside / name, 100, Limits.for_folder(inside))
    # A folder named in AUTOCONF_ALLOWED_FOLDERS may be pointed into.
    assert read_bounded(inside / "link", 100, Limits.for_folder(inside, [outside])) == b"secret"
    # A symlink that stays inside (Kubernetes ConfigMaps are made of them) is fine.
    (inside / "real").write_text("x")
    (inside / "alias").symlink_to("real")
    assert read_bounded(inside / "alias", 100, Limits.for_folder(inside)) == b"x"


def test_a_file_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    with (tmp_path / "big").open("wb") as stream:
        stream.truncate(10_000)
    with pytest.raises(ReadRefused, match=r"^too large \(10000 bytes, limit 9999\)$"):
        read_bounded(tmp_path / "big", 9_999, Limits.for_folder(tmp_path))


def test_a_domain_file_over_the_limit_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("domains: [a.example]\n" + SERVERS + "#" * 5000)
    provider, problems = load_file(path, Limits.for_folder(tmp_path, max_file_bytes=4096))
    assert provider is None
    size = path.stat().st_size
    assert [str(p) for p in problems] == [f"{path}: too large ({size} bytes, limit 4096)"]


def test_a_list_over_its_limits_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "list").write_text("".join(f"d{i}.example\n" for i in range(50)))
    path = tmp_path / "h.yaml"
    path.write_text("domains_from: list\n" + SERVERS)
    _, problems = load_file(path, Limits.for_folder(tmp_path, max_list_bytes=100))
    size = (tmp_path / "list").stat().st_size
    assert [p.message for p in problems] == [
        f"{tmp_path / 'list'}: too large ({size} bytes, limit 100)"
    ]
    _, problems = load_file(path, Limits.for_folder(tmp_path, max_domains=49))
    assert [p.message for p in problems] == ["too many domains (50, limit 49)"]
