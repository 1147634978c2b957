"""Command-line options generated from the config dataclasses (:mod:`graphtag.config`).

Each config field becomes one option: ``--`` and the field name with dashes, plus the older
spellings its metadata lists (``--layers`` for ``num_layers``); its default, choices, help
and option group come from the field, so the command line and the config agree by
construction. The value read is already of the field's type (``--fanout 15 10`` gives the
tuple ``(15, 10)``); the config itself validates it.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from graphtag.config import Registry

__all__ = ["GROUP_TITLES", "add_config_options", "config_from_args", "option_for"]

#: Titles of the option groups named in the fields' metadata, in the order they are shown.
GROUP_TITLES = {
    "data": "data",
    "files": "your own data",
    "model": "model",
    "training": "training",
    "gradients": "Grad-TAG: projected gradients",
    "affinity": "Grad-TAG: subset fits and task affinity",
    "grouping": "grouping and grouped training",
    "peers": "peers",
    "oracle": "oracle (--methods ...,oracle: a model trained per task subset)",
}


def flag_of(name: str) -> str:
    """The option string made from a field name: ``num_layers`` -> ``--num-layers``."""
    return "--" + name.replace("_", "-")


def _type_parts(hint: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed); a tuple of the types for a union
    of several (such a field reads its value with its setting's ``parse``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        return (args[0] if len(args) == 1 else tuple(args)), optional
    return hint, False


def _reader(fn: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    """``fn`` with argparse's error message on a bad value."""
    def read(text: str) -> Any:
        try:
            return fn(text)
        except (ValueError, TypeError) as err:
            raise argparse.ArgumentTypeError(str(err) or f"invalid {what}: {text!r}") from None
    read.__name__ = what
    return read


def _number(kind: type, optional: bool, zero_is_none: bool) -> Callable[[str], Any]:
    def read(text: str) -> Any:
        if optional and text.strip().lower() == "none":
            return None
        try:
            v = kind(text)
        except ValueError:
            raise ValueError(f"{text!r} is not {'an integer' if kind is int else 'a number'}"
                             + (" or 'none'" if optional else "")) from None
        return None if zero_is_none and v == 0 else v
    return read


class _TupleAction(argparse.Action):
    """Stores the values of an ``nargs`` option as a tuple (config fields are tuples)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, tuple(values))


def _spell(value: Any) -> str:
    """A default as it would be typed on the command line."""
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return str(value)


def option_for(cls: type, f: dataclasses.Field, hint: Any) -> tuple[list[str], dict[str, Any]]:
    """The option strings and ``add_argument`` keywords of config field ``f``."""
    meta = f.metadata
    if "help" not in meta:
        raise TypeError(f"{cls.__name__}.{f.name} is not declared with graphtag.config."
                        "setting(): every config field needs its help text (and an option).")
    names = [flag_of(f.name), *meta["flags"]]
    kw: dict[str, Any] = {"dest": f.name, "default": f.default}
    base, optional = _type_parts(hint)
    choices = meta["choices"]
    zero_is_none = meta["zero_is_none"]
    help_text = meta["help"]
    item_choices = False
    if meta["parse"] is not None:
        kw["type"] = _reader(meta["parse"], f.name)
    elif base is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif base in (int, float):
        kw["type"] = _reader(_number(base, optional, zero_is_none), f.name)
    elif base is str:
        kw["type"] = str
    elif typing.get_origin(base) is tuple:
        args = typing.get_args(base)
        item = args[0]
        if item is str:  # a list of names: one comma-separated argument
            kw["type"] = _reader(
                lambda text: tuple(x.strip() for x in text.split(",") if x.strip()), f.name)
            item_choices = True
        else:
            kw["type"] = _reader(_number(item, False, False), f.name)
            kw["nargs"] = "+" if (len(args) == 2 and args[1] is Ellipsis) else len(args)
            kw["action"] = _TupleAction
    else:
        raise TypeError(f"no command-line form for {cls.__name__}.{f.name}: {hint!r}; give "
                        "its setting() a parse function.")
    if choices is not None:
        if item_choices:
            # checked by the config (all names at once, one error), listed in the help
            names_list = choices.names() if isinstance(choices, Registry) else choices
            help_text = help_text.replace("%(choices)s", ", ".join(map(str, names_list)))
        else:
            kw["choices"] = choices
            if "%(choices)s" not in help_text:
                help_text += "; one of %(choices)s"
    if meta["metavar"] is not None:
        kw["metavar"] = meta["metavar"]
    elif isinstance(choices, Registry) and not item_choices:
        kw["metavar"] = f.name.upper()  # argparse would list (so import) the choices now
    if f.default is not None and "default" not in help_text.lower():
        shown = ("on" if f.default else "off") if base is bool else \
            ",".join(f.default) if item_choices else _spell(f.default)
        help_text += f" (default {shown.replace('%', '%%')})"
    kw["help"] = help_text
    return names, kw


def add_config_options(parser: argparse.ArgumentParser, cls: type,
                       names: Sequence[str] | None = None,
                       groups: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add an option for every field of config dataclass ``cls`` (or the fields ``names``)
    to ``parser``, in argument groups by the fields' ``group``; returns the groups (pass
    them back to add more options to the same groups)."""
    hints = typing.get_type_hints(cls)
    groups = {} if groups is None else groups
    fields = [f for f in dataclasses.fields(cls) if names is None or f.name in names]
    order = list(GROUP_TITLES)
    fields.sort(key=lambda f: order.index(f.metadata.get("group", "training")))
    for f in fields:
        opts, kw = option_for(cls, f, hints[f.name])
        g = f.metadata["group"]
        if g not in groups:
            groups[g] = parser.add_argument_group(GROUP_TITLES.get(g, g))
        groups[g].add_argument(*opts, **kw)
        for flag, value in f.metadata["const_flags"].items():
            groups[g].add_argument(flag, dest=f.name, action="store_const", const=value,
                                   default=argparse.SUPPRESS,
                                   help=f"the same as {opts[0]} {value}")
    return groups


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """The config ``cls`` with every field read from parsed ``args`` (validated there)."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
