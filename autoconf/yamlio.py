"""Safe YAML loading that remembers where every value came from.

Mappings load as :class:`MarkedMap` and sequences as :class:`MarkedList`; both
keep the 1-based line of each key and item so that validation can say
``FILE:LINE``. Duplicate keys and syntax errors become :class:`ConfigError`
instead of exceptions, so that a broken file never stops the others.
"""

from __future__ import annotations

from typing import Any

import yaml

from autoconf.errors import ConfigError

# A YAML file with aliases can describe an exponentially large tree in a few
# lines; walking it is bounded so that no file can exhaust memory or time.
MAX_NODES = 5_000_000


# libyaml's parser is several times faster; the tree walk below is the same.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class MarkedMap(dict[str, Any]):
    """A mapping that knows its own line and the line of each key and value."""

    line: int
    key_lines: dict[str, int]
    value_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.value_lines.get(key, self.line)


class MarkedList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _TooLarge(Exception):
    pass


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.errors: list[ConfigError] = []
        self.count = 0

    def build(self, node: yaml.Node, path: str) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge
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
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: str) -> MarkedMap:
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result = MarkedMap()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        result.value_lines = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                # YAML turns `on:` or `1:` into non-strings; keys here are names.
                key = str(key).lower() if isinstance(key, bool) else str(key)
            child = f"{path}.{key}" if path else key
            if key in result:
                self.errors.append(
                    ConfigError(
                        self.file,
                        key_line,
                        child,
                        f"duplicate key (first given on line {result.key_lines[key]})",
                    )
                )
                continue
            result[key] = self.build(value_node, child)
            result.key_lines[key] = key_line
            result.value_lines[key] = value_node.start_mark.line + 1
        return result


def load(text: str, file: str) -> tuple[Any, list[ConfigError]]:
    """Parse one YAML document; return the marked tree (or None) and every error."""
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            problem = exc.problem or exc.context or "invalid YAML"
            if exc.context and exc.problem:
                problem = f"{exc.context}: {exc.problem}"
            return None, [ConfigError(file, line, "(yaml)", f"syntax error: {problem}")]
        except yaml.YAMLError as exc:
            return None, [ConfigError(file, 1, "(yaml)", f"syntax error: {exc}")]
        except RecursionError:
            return None, [ConfigError(file, 1, "(yaml)", "nested too deeply")]
        if node is None:
            return None, [ConfigError(file, 1, "(root)", "the file is empty")]
        builder = _Builder(loader, file)
        try:
            tree = builder.build(node, "")
        except (_TooLarge, RecursionError):
            return None, [
                ConfigError(file, 1, "(yaml)", f"more than {MAX_NODES} values (alias bomb?)")
            ]
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            return None, [ConfigError(file, line, "(yaml)", f"invalid value: {exc.problem}")]
        return tree, builder.errors
    finally:
        loader.dispose()
