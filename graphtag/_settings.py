"""Interface metadata of config fields: :func:`setting` declares a field with its help,
choices and flags; :class:`Registry` reads allowed values from the module that defines them,
on first use, so declaring a setting imports nothing heavy."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, get_args, get_origin

__all__ = ["Registry", "choices_of", "setting"]


class Registry:
    """The names registered in ``module.attr`` (a tuple, the keys of a dict, or the values
    of a ``Literal``), imported on first use so that declaring a setting imports nothing
    heavy. Supports ``in``, iteration and ``len`` (argparse ``choices`` use these)."""

    def __init__(self, module: str, attr: str) -> None:
        self.module, self.attr = module, attr

    def names(self) -> tuple[Any, ...]:
        obj = getattr(importlib.import_module(self.module), self.attr)
        if get_origin(obj) is Literal:
            return get_args(obj)
        return tuple(obj)

    def __contains__(self, value: object) -> bool:
        return value in self.names()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.module}.{self.attr})"


def setting(
    default: Any,
    help: str,
    *,
    group: str,
    choices: Sequence[Any] | Registry | None = None,
    flags: Sequence[str] = (),
    const_flags: Mapping[str, Any] | None = None,
    metavar: str | tuple[str, ...] | None = None,
    parse: Callable[[str], Any] | None = None,
    zero_is_none: bool = False,
) -> Any:
    """A config field with its interface metadata.

    Parameters
    ----------
    default
        The default value (immutable: tuples, not lists).
    help
        One line for ``--help``; the default is appended there unless the text speaks of it.
    group
        The option group it is listed under.
    choices
        Allowed values (for a tuple-valued field: allowed items), a sequence or a
        :class:`Registry`.
    flags
        Further option strings of the same option (older spellings), besides the one made
        from the field name (``num_layers`` -> ``--num-layers``).
    const_flags
        Option strings that set the field to a fixed value (``{"--drop-constant-tasks":
        "drop"}``).
    metavar
        The argument's name in ``--help``.
    parse
        Reads the value from command-line text (for fields of mixed type).
    zero_is_none
        On the command line ``0`` also means None (``--max-fit-nodes 0``: all nodes).
    """
    meta = {"help": help, "group": group, "choices": choices, "flags": tuple(flags),
            "const_flags": dict(const_flags or {}), "metavar": metavar, "parse": parse,
            "zero_is_none": zero_is_none}
    return dataclasses.field(default=default, metadata=meta)


def choices_of(f: dataclasses.Field) -> tuple[Any, ...] | None:
    """The allowed values (or items) of a config field, registries resolved; None: any."""
    ch = f.metadata.get("choices")
    if ch is None:
        return None
    return ch.names() if isinstance(ch, Registry) else tuple(ch)
