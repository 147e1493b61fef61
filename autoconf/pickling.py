"""Fast pickling for the frozen, slotted dataclasses the state folder keeps.

A slotted dataclass pickles its fields as a dict, and unpickles them through
``dataclasses.fields()`` once per object: at 100,000 domain files that lookup
was two thirds of a restart's reading of the state. These classes pickle a
plain tuple in field order instead, and set it back with one loop.

:func:`dumps_shared` and :func:`loads_shared` carry objects that many others
share (a hoster's 100,000 files name the same few servers) across a process
boundary once each, and make them the receiver's own equal ones.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Hashable
from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

C = TypeVar("C", bound=type)
H = TypeVar("H", bound=Hashable)


def tuple_state(cls: C) -> C:
    """Class decorator, outside ``@dataclass(frozen=True, slots=True)``."""
    names = tuple(f.name for f in fields(cls))
    read = attrgetter(*names)
    single = len(names) == 1

    def __getstate__(self: Any) -> tuple[Any, ...]:
        values = read(self)
        return (values,) if single else values

    def __setstate__(self: Any, state: tuple[Any, ...]) -> None:
        for name, value in zip(names, state, strict=True):
            object.__setattr__(self, name, value)

    setattr(cls, "__getstate__", __getstate__)  # noqa: B010 (a class built already)
    setattr(cls, "__setstate__", __setstate__)  # noqa: B010
    return cls


def dumps_shared(value: object, shared: list[Any]) -> bytes:
    """``value`` pickled with each of ``shared`` (objects of one type) named by
    its place in a table that comes first."""
    index = {id(item): i for i, item in enumerate(shared)}
    kind = type(shared[0]) if shared else None
    body = io.BytesIO()
    _SharedPickler(body, index, kind).dump(value)
    return pickle.dumps((shared, body.getvalue()), protocol=pickle.HIGHEST_PROTOCOL)


def loads_shared(data: bytes, pool: dict[H, H]) -> Any:
    """What :func:`dumps_shared` pickled, each shared object replaced by an equal
    one already in ``pool`` (or added to it)."""
    shared, body = pickle.loads(data)
    own = [pool.setdefault(item, item) for item in shared]
    return _SharedUnpickler(body, own).load()


class _SharedPickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, index: dict[int, int], kind: type | None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._index = index
        self._kind = kind

    def persistent_id(self, obj: object) -> int | None:
        return self._index.get(id(obj)) if type(obj) is self._kind else None


class _SharedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, shared: list[Any]) -> None:
        super().__init__(io.BytesIO(data))
        self._shared = shared

    def persistent_load(self, pid: object) -> Any:
        assert isinstance(pid, int)
        return self._shared[pid]
