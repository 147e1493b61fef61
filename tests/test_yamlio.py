"""yamlio: safe YAML loading that keeps the line of every key, value and list item."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autoconf import yamlio
from autoconf.errors import Problem
from autoconf.yamlio import MarkedList, MarkedMap

ROOT = Path(__file__).resolve().parent.parent


def shown(errors: list[Problem]) -> list[str]:
    return [str(e) for e in errors]


# -- line numbers -----------------------------------------------------------

MARKED = """\
# A comment before anything: line 1.
domains:
  - example.com
  - "example.net"
incoming:
  - type: imap
    host: imap.example.com

    port: 993
webmail: {url: "https://webmail.example.com/"}
flow: [a,
  b]
"""


def test_mappings_and_lists_load_as_marked_types() -> None:
    tree, errors = yamlio.load(MARKED, "f.yaml")
    assert errors == []
    assert isinstance(tree, MarkedMap)
    assert isinstance(tree["domains"], MarkedList)
    assert isinstance(tree["incoming"][0], MarkedMap)
    assert isinstance(tree["webmail"], MarkedMap)
    assert tree["domains"] == ["example.com", "example.net"]
    assert tree["incoming"][0]["port"] == 993


def test_line_of_each_key() -> None:
    tree, _ = yamlio.load(MARKED, "f.yaml")
    assert tree.line == 2  # the mapping starts at its first key, after the comment
    assert tree.key_lines == {"domains": 2, "incoming": 5, "webmail": 10, "flow": 11}
    server = tree["incoming"][0]
    assert server.line == 6
    assert server.key_lines == {"type": 6, "host": 7, "port": 9}


def test_line_of_each_value() -> None:
    tree, _ = yamlio.load(MARKED, "f.yaml")
    # A value is found at its key's line, even a block value that starts below it.
    assert tree.line_of("domains") == 2
    assert tree.line_of("webmail") == 10
    assert tree["incoming"][0].line_of("port") == 9
    assert tree["webmail"].line_of("url") == 10
    # A key that is not there falls back to the mapping's own line.
    assert tree["incoming"][0].line_of("security") == 6


def test_line_of_each_list_item() -> None:
    tree, _ = yamlio.load(MARKED, "f.yaml")
    assert tree["domains"].line == 3
    assert tree["domains"].item_lines == [3, 4]
    assert tree["domains"].line_of(1) == 4
    assert tree["domains"].line_of(7) == 3  # out of range: the list's own line
    assert tree["incoming"].item_lines == [6]
    assert tree["flow"].item_lines == [11, 12]


def test_scalars_keep_their_yaml_types() -> None:
    tree, errors = yamlio.load('a: 993\nb: "993"\nc: true\nd: ~\ne: 1.5\n', "f.yaml")
    assert errors == []
    assert tree == {"a": 993, "b": "993", "c": True, "d": None, "e": 1.5}
    assert type(tree["a"]) is int
    assert type(tree["b"]) is str


# -- duplicate keys -------------------------------------------------------------


def test_duplicate_key_is_reported_with_both_lines() -> None:
    text = "domains:\n  - example.com\nincoming: []\ndomains:\n  - example.net\n"
    tree, errors = yamlio.load(text, "f.yaml")
    assert shown(errors) == ["f.yaml:4: domains: duplicate key (first given on line 1)"]
    # The tree is still returned, so that validation reports everything else too.
    assert tree["domains"] == ["example.com"]


def test_nested_duplicate_key_names_its_path() -> None:
    text = textwrap.dedent(
        """\
        incoming:
          - type: imap
            host: a.example.com
          - type: pop3
            host: b.example.com
            security: ssl
            host: c.example.com
        """
    )
    tree, errors = yamlio.load(text, "f.yaml")
    assert shown(errors) == ["f.yaml:7: incoming[1].host: duplicate key (first given on line 5)"]
    assert tree["incoming"][1]["host"] == "b.example.com"


def test_every_duplicate_is_reported() -> None:
    text = "a: 1\nb: 2\na: 3\nb: 4\na: 5\n"
    _, errors = yamlio.load(text, "f.yaml")
    assert shown(errors) == [
        "f.yaml:3: a: duplicate key (first given on line 1)",
        "f.yaml:4: b: duplicate key (first given on line 2)",
        "f.yaml:5: a: duplicate key (first given on line 1)",
    ]


# -- syntax errors and odd documents -------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # Indented by three instead of four: the bad line is 3.
        ("incoming:\n  - type: imap\n   host: x\n", 3),
        # A tab used for indentation on line 2.
        ("domains:\n\t- example.com\n", 2),
        # "security ssl": the colon is missing on line 2, not on line 3.
        ("server:\n  security ssl\n  port: 993\n", 2),
        # An unclosed flow list that runs into the next key.
        ("domains: [example.com,\nincoming:\n  - type: imap\n", 3),
        # Two documents in one file.
        ("a: 1\n---\nb: 2\n", 2),
    ],
    ids=["indentation", "tab", "missing-colon", "unclosed-flow", "two-documents"],
)
def test_syntax_error_gives_the_line_of_the_mistake(text: str, line: int) -> None:
    tree, errors = yamlio.load(text, "f.yaml")
    assert tree is None
    assert len(errors) == 1
    error = errors[0]
    assert (error.file, error.line, error.path) == ("f.yaml", line, "(yaml)")
    assert error.message.startswith("syntax error: ")
    assert error.is_error


def test_unclosed_quote_points_at_the_opening_quote() -> None:
    text = 'domains:\n  - "example.com\nincoming: []\noutgoing: []\n'
    _, errors = yamlio.load(text, "f.yaml")
    assert len(errors) == 1
    # The scanner only notices at the end of the file; the admin must look at line 2.
    assert errors[0].line == 2


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "   \n", "# nothing here yet\n# really\n", "---\n", "--- # empty\n...\n"],
    ids=["zero-bytes", "blank-lines", "spaces", "comments-only", "marker-only", "marker-end"],
)
def test_empty_file_is_an_error(text: str) -> None:
    tree, errors = yamlio.load(text, "f.yaml")
    assert tree is None
    assert shown(errors) == ["f.yaml:1: (root): the file is empty"]


def test_python_tags_are_refused_not_executed() -> None:
    text = "domains:\n  - example.com\nx: !!python/name:os.system\n"
    tree, errors = yamlio.load(text, "f.yaml")
    assert tree is None
    assert len(errors) == 1
    assert (errors[0].line, errors[0].path) == (3, "(yaml)")
    assert errors[0].is_error


# -- aliases and merge keys --------------------------------------------------------


def test_plain_aliases_are_resolved() -> None:
    text = "a: &hosts [x.example.com, y.example.com]\nb: *hosts\n"
    tree, errors = yamlio.load(text, "f.yaml")
    assert errors == []
    assert tree["b"] == ["x.example.com", "y.example.com"]


def test_merge_key_copies_the_anchored_mapping() -> None:
    text = textwrap.dedent(
        """\
        incoming:
          - &imap
            type: imap
            host: mail.example.com
            security: ssl
          - <<: *imap
            port: 994
        """
    )
    tree, errors = yamlio.load(text, "f.yaml")
    assert errors == []
    assert tree["incoming"][1] == {
        "type": "imap",
        "host": "mail.example.com",
        "security": "ssl",
        "port": 994,
    }
    assert isinstance(tree["incoming"][1], MarkedMap)
    assert tree["incoming"][1].line_of("port") == 7


def test_merge_key_with_a_list_of_mappings() -> None:
    text = textwrap.dedent(
        """\
        base: &base {host: mail.example.com}
        tls: &tls {security: ssl}
        server:
          <<: [*base, *tls]
          type: imap
        """
    )
    tree, errors = yamlio.load(text, "f.yaml")
    assert errors == []
    assert tree["server"] == {"host": "mail.example.com", "security": "ssl", "type": "imap"}


def test_keys_beside_a_merge_override_the_merged_ones() -> None:
    """YAML merge semantics: a key written in the mapping wins over a merged one.

    That is what merge keys are for (one server as a template for another), so it
    is not a duplicate key.
    """
    text = textwrap.dedent(
        """\
        incoming:
          - &server
            type: imap
            host: mail.example.com
            security: ssl
        outgoing:
          - <<: *server
            type: smtp
            security: starttls
        """
    )
    tree, errors = yamlio.load(text, "f.yaml")
    assert shown(errors) == []
    assert tree["outgoing"][0] == {
        "type": "smtp",
        "host": "mail.example.com",
        "security": "starttls",
    }


def test_a_real_duplicate_beside_a_merge_is_still_reported() -> None:
    text = textwrap.dedent(
        """\
        a: &a {host: mail.example.com}
        b:
          <<: *a
          port: 1
          port: 2
        """
    )
    _, errors = yamlio.load(text, "f.yaml")
    assert shown(errors) == ["f.yaml:5: b.port: duplicate key (first given on line 4)"]


# The child builds a "billion laughs" document: 9 levels of 10 aliases each, 10**9
# values in all, from under 1 KiB of text. It reports how long the load took and how
# much memory it grew by. A separate process keeps this test bounded even if the
# loader hangs or eats memory: it is killed after a timeout and capped at 2 GiB.
_BOMB_CHILD = textwrap.dedent(
    """\
    import json, resource, time
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    from autoconf import yamlio
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * 10) + "]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    text = "\\n".join(lines) + "\\n"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    tree, errors = yamlio.load(text, "bomb.yaml")
    elapsed = time.perf_counter() - start
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({
        "size": len(text),
        "tree_is_none": tree is None,
        "errors": [str(e) for e in errors],
        "seconds": elapsed,
        "grown_mb": grown_mb,
    }))
    """
)


def test_alias_bomb_is_refused_quickly_and_without_eating_memory() -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _BOMB_CHILD],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("loading a 1 KiB alias bomb did not finish within 30 s")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["size"] < 1024
    assert report["tree_is_none"]
    assert len(report["errors"]) == 1
    assert report["errors"][0].startswith("bomb.yaml:")
    assert "alias" in report["errors"][0]
    # A 100,000-domain file (a normal hoster) loads in about 0.3 s and 50 MB; a
    # 1 KiB file must not cost more than that. Reloads run while serving.
    cost = {"seconds": round(report["seconds"], 2), "grown_mb": round(report["grown_mb"])}
    assert cost["seconds"] < 1.0 and cost["grown_mb"] < 100, cost


def test_tagged_and_untagged_strings() -> None:
    tree, errors = yamlio.load("a: !!str 123\nb: '007'\nc: plain\nd: 7\n", "f.yaml")
    assert errors == []
    assert tree == {"a": "123", "b": "007", "c": "plain", "d": 7}


def test_an_alias_without_its_anchor_is_a_syntax_error() -> None:
    # Files without "&" skip the alias count: an alias there can only be undefined.
    tree, errors = yamlio.load("a: x\nb: *nowhere\n", "f.yaml")
    assert tree is None
    assert [(e.line, e.path) for e in errors] == [(2, "(yaml)")]
    assert "alias" in errors[0].message
