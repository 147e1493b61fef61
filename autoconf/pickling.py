"""Fast pickling for the frozen, slotted dataclasses the state folder keeps.

A slotted dataclass pickles its fields as a dict, and unpickles them through
``dataclasses.fields()`` once per object: at 100,000 domain files that lookup
was two thirds of a restart's reading of the state. These classes pickle a
plain tuple in field order instead, and set it back with one loop.
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

C = TypeVar("C", bound=type)


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
