"""Safe YAML loading that remembers where every value came from.

Mappings load as :class:`MarkedMap` and sequences as :class:`MarkedList`; both
keep the 1-based line of each key and item so that validation can say
``FILE:LINE``. Duplicate keys and syntax errors become :class:`Problem`
instead of exceptions, so that a broken file never stops the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from autoconf.errors import Problem

# A YAML file with aliases can describe an exponentially large tree in a few
# lines; its expanded size is counted on the shared graph before anything is
# built, so that no file can exhaust memory or time. A 100,000-domain list is
# about 100,000 values.
MAX_NODES = 2_000_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


# libyaml's parser is several times faster; the tree walk below is the same.
if TYPE_CHECKING:
    _Base = yaml.SafeLoader
else:
    _Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The tag of a plain scalar depends on its text alone; a hoster's 100,000 files
# repeat the same few hundred values. Bounded: emptied when full.
_TAGS: dict[tuple[Any, str, Any], str] = {}
_MAX_TAGS = 20_000


class _Loader(_Base):
    """The safe loader, with the resolver's per-node work cut down. libyaml's
    composer calls three Python methods for every node; the safe loader has no
    path resolvers, so two of them have nothing to do, and the third's answer
    for a given text is remembered (measured: a third of the composing time)."""

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        key = (kind, value, implicit)
        tag = _TAGS.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
            if len(_TAGS) >= _MAX_TAGS:
                _TAGS.clear()
            _TAGS[key] = tag
        return tag


assert not yaml.SafeLoader.yaml_path_resolvers  # what the no-op resolvers rely on


class MarkedMap(dict[str, Any]):
    """A mapping that knows its own line and the line of each key."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """The line of ``key`` (where an admin looks for its value), else the mapping's."""
        return self.key_lines.get(key, self.line)


class MarkedList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with every alias expanded (memoised)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, sizes) + _expanded_size(value, sizes)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, sizes)
    sizes[id(node)] = size = min(size, MAX_NODES + 1)
    return size


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.errors: list[Problem] = []
        self._splits: dict[int, tuple[list[Any], list[Any]]] = {}

    def build(self, node: yaml.Node, path: str) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            result = MarkedList()
            result.line = node.start_mark.line + 1
            result.item_lines = []
            for index, item in enumerate(node.value):
                result.append(self.build(item, f"{path}[{index}]"))
                result.item_lines.append(item.start_mark.line + 1)
            return result
        if node.tag == _STR_TAG:  # most values: the text itself, as SafeLoader builds it
            return node.value
        return self.loader.construct_object(node, deep=True)

    def _key(self, node: yaml.Node) -> str:
        # Keys are names: keep the text as written, so that `on:` stays "on"
        # instead of YAML 1.1's boolean true.
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        return str(self.loader.construct_object(node, deep=True))

    def _split(self, node: yaml.MappingNode) -> tuple[list[Any], list[Any]]:
        """The pairs written in a mapping, and those a merge (<<) brings in.

        Keys written here win; a merge only fills in what they lack. The split is
        kept per node, because flattening changes the node and an alias visits it again.
        """
        known = self._splits.get(id(node))
        if known is None:
            written = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
            if len(written) == len(node.value):  # no merge here: nothing to flatten
                return written, []
            self.loader.flatten_mapping(node)
            merged = node.value[: len(node.value) - len(written)]
            known = self._splits[id(node)] = (written, merged)
        return known

    def _mapping(self, node: yaml.MappingNode, path: str) -> MarkedMap:
        result = MarkedMap()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        written, merged = self._split(node)
        for key_node, value_node in written:
            key = self._key(key_node)
            key_line = key_node.start_mark.line + 1
            child = f"{path}.{key}" if path else key
            if key in result:
                first = result.key_lines[key]
                message = f"duplicate key (first given on line {first})"
                self.errors.append(Problem(self.file, key_line, child, message))
                continue
            result[key] = self.build(value_node, child)
            result.key_lines[key] = key_line
        for key_node, value_node in merged:
            key = self._key(key_node)
            if key not in result:
                child = f"{path}.{key}" if path else key
                result[key] = self.build(value_node, child)
                result.key_lines[key] = key_node.start_mark.line + 1
        return result


def _missing_colon(text: str, line: int, problem: str) -> tuple[int, str]:
    """``key value`` without its colon is read as the start of a longer plain
    value, and YAML notices only at the next ``key:``. Point at the first of the
    colon-less lines before it instead."""
    lines = text.splitlines()
    start = line
    while start > 1:
        previous = lines[start - 2].strip()
        if not previous or previous.startswith(("#", "-")) or ":" in previous:
            break
        start -= 1
    if start == line:
        return line, problem
    return start, f"{problem} (is a ':' missing on this line?)"


def _syntax_error(text: str, exc: yaml.MarkedYAMLError) -> tuple[int, str]:
    """The line and words of a syntax error, as an admin can act on them."""
    mark = exc.problem_mark or exc.context_mark
    tab = "tab character" in (exc.problem or "")
    if isinstance(exc, yaml.scanner.ScannerError) and exc.context_mark is not None and not tab:
        # "while scanning a quoted scalar": the culprit is where the scalar
        # began; the problem mark is wherever the scanner gave up. (A tab is
        # where the problem mark says.)
        mark = exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem:
        problem = f"{exc.context}: {exc.problem}"
    found = _character_at(text, exc.problem_mark)
    if "cannot start any token" in problem and found == "%":
        return line, (
            f"{problem}: a value that begins with % must be quoted, "
            'as in username: "%EMAILADDRESS%"'
        )
    if tab or ("cannot start any token" in problem and found == "\t"):
        return line, f"{problem}: YAML indents with spaces, never tabs"
    if "mapping values are not allowed" in problem:
        return _missing_colon(text, line, problem)
    return line, problem


def _character_at(text: str, mark: yaml.Mark | None) -> str:
    if mark is None:
        return ""
    lines = text.splitlines()
    if not 0 <= mark.line < len(lines) or not 0 <= mark.column < len(lines[mark.line]):
        return ""
    return lines[mark.line][mark.column]


def load(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; return the marked tree (or None) and every error."""
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            line, problem = _syntax_error(text, exc)
            return None, [Problem(file, line, "(yaml)", f"syntax error: {problem}")]
        except yaml.YAMLError as exc:
            return None, [Problem(file, 1, "(yaml)", f"syntax error: {exc}")]
        except RecursionError:
            return None, [Problem(file, 1, "(yaml)", "nested too deeply")]
        if node is None:
            return None, [Problem(file, 1, "(root)", "the file is empty")]
        try:
            # Without an anchor (&) there is no alias, and the tree is no larger
            # than the text: only a file with one needs counting.
            too_large = "&" in text and _expanded_size(node, {}) > MAX_NODES
        except RecursionError:
            return None, [Problem(file, 1, "(yaml)", "nested too deeply")]
        if too_large:
            message = f"more than {MAX_NODES:,} values once aliases are expanded"
            return None, [Problem(file, 1, "(yaml)", message)]
        builder = _Builder(loader, file)
        try:
            tree = builder.build(node, "")
        except RecursionError:
            return None, [Problem(file, 1, "(yaml)", "nested too deeply")]
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            return None, [Problem(file, line, "(yaml)", f"invalid value: {exc.problem}")]
        if tree is None and not builder.errors:  # only "---", "~" or comments
            return None, [Problem(file, 1, "(root)", "the file is empty")]
        return tree, builder.errors
    finally:
        loader.dispose()
