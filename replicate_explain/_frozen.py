"""Frozen value classes, as ``@dataclass(frozen=True)`` makes them, without its start-up cost.

``dataclasses`` writes each class's methods as source text and compiles them one by one
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``): about
0.8 ms a class on a slow machine, 10 ms for the classes a first explanation imports, a third of
its cost. :func:`frozen` gives a class the same methods, written once here and generic over its
fields. The class gets real :class:`dataclasses.Field` s, so ``dataclasses.fields``, ``replace``,
``asdict`` and ``is_dataclass`` treat it as the dataclass it was (``Explanation`` is public).

Supported: annotated fields in order, plain defaults and ``field(default=..., default_factory=...,
repr=..., compare=...)``. Not supported (no class here uses them, and :func:`frozen` raises
rather than guess): ``ClassVar``/``InitVar`` annotations, ``__post_init__``, base classes with
fields.
"""

from __future__ import annotations

import dataclasses

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from typing_extensions import dataclass_transform

    _T = TypeVar("_T")

__all__ = ["frozen"]

_MISSING: Any = dataclasses.MISSING
#: The marker ``dataclasses.fields`` keeps (a field, not a ``ClassVar`` or an ``InitVar``).
_FIELD_MARKER: Any = dataclasses._FIELD  # type: ignore[attr-defined]


def _fields_of(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of ``cls``, from its own annotations, as ``dataclasses`` would make them."""
    for base in cls.__mro__[1:]:
        if hasattr(base, "__dataclass_fields__"):
            raise TypeError(f"frozen(): {cls.__qualname__} inherits fields from {base.__qualname__}")
    if "__post_init__" in cls.__dict__:
        raise TypeError(f"frozen(): {cls.__qualname__} defines __post_init__")
    made: list[dataclasses.Field[Any]] = []
    own = cls.__dict__.get("__annotations__")  # noqa: RUF063 (3.9: ``cls.__annotations__`` may be a base's)
    for name, annotation in (own if own is not None else getattr(cls, "__annotations__", {})).items():
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        if text.split("[", 1)[0].rsplit(".", 1)[-1] in ("ClassVar", "InitVar"):
            raise TypeError(f"frozen(): {cls.__qualname__}.{name} is a {text}")
        default = cls.__dict__.get(name, _MISSING)
        spec: dataclasses.Field[Any] = (
            default if isinstance(default, dataclasses.Field) else dataclasses.field(default=default)
        )
        if not spec.init:
            raise TypeError(f"frozen(): {cls.__qualname__}.{name} is field(init=False)")
        if isinstance(spec.default, (list, dict, set)):  # dataclasses' own rule, and its words
            raise ValueError(
                f"mutable default {type(spec.default)} for field {name} is not allowed: use default_factory"
            )
        if _is_required(spec) and made and not _is_required(made[-1]):
            raise TypeError(f"non-default argument {name!r} follows default argument")
        spec.name = name
        spec.type = annotation
        spec._field_type = _FIELD_MARKER  # type: ignore[attr-defined]
        if hasattr(spec, "kw_only"):  # 3.10+: resolved as dataclasses resolves it (a subclass reads it)
            spec.kw_only = False
        # As dataclasses leaves it: the default as the class attribute, a factory none.
        if spec.default is not _MISSING:
            setattr(cls, name, spec.default)
        elif name in cls.__dict__:
            delattr(cls, name)
        made.append(spec)
    return tuple(made)


def _is_required(spec: dataclasses.Field[Any]) -> bool:
    return spec.default is _MISSING and spec.default_factory is _MISSING


def _params() -> Any:
    """``__dataclass_params__`` of a frozen dataclass (what ``@dataclass`` on a subclass reads)."""
    wanted = {"init": True, "repr": True, "eq": True, "order": False, "unsafe_hash": False, "frozen": True}
    later = {"match_args": True, "kw_only": False, "slots": False, "weakref_slot": False}  # 3.12+
    make = dataclasses._DataclassParams  # type: ignore[attr-defined]
    try:
        return make(**wanted, **later)
    except TypeError:
        return make(**wanted)


class _Signature:
    """``__signature__`` of a frozen class, made when first asked for (``help()``, a notebook's
    tooltip): ``inspect`` is not imported to build a class."""

    def __get__(self, instance: object, owner: type) -> Any:
        import inspect

        empty = inspect.Parameter.empty
        factory = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", empty)  # shown as <factory>
        return inspect.Signature(
            [
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=empty if _is_required(f) else factory if f.default is _MISSING else f.default,
                    annotation=f.type,
                )
                for f in dataclasses.fields(owner)
            ],
            return_annotation=None,
        )


def _frozen(cls: type) -> type:
    fields = _fields_of(cls)
    names = tuple(f.name for f in fields)
    count = len(names)
    known = frozenset(names)
    defaults: tuple[tuple[str, Any, Any], ...] = tuple((f.name, f.default, f.default_factory) for f in fields)
    shown = tuple(f.name for f in fields if f.repr)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    setter = object.__setattr__
    title = cls.__qualname__
    this: Any = cls

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if not kwargs and len(args) == count:  # the common call (the rule cache's): all, in order
            for name, value in zip(names, args):
                setter(self, name, value)
            return
        if len(args) > count:
            raise TypeError(f"{title}.__init__() takes {count + 1} positional arguments but {len(args) + 1} were given")
        values = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in known:
                raise TypeError(f"{title}.__init__() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{title}.__init__() got multiple values for argument {name!r}")
            values[name] = value
        for name, default, factory in defaults:
            if name in values:
                value = values[name]
            elif default is not _MISSING:
                value = default
            elif factory is not _MISSING:
                value = factory()
            else:
                raise TypeError(f"{title}.__init__() missing 1 required argument: {name!r}")
            setter(self, name, value)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, name) for name in compared) == tuple(getattr(other, name) for name in compared)

    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, name) for name in hashed))

    # As dataclasses: a field, or any attribute of the class itself, is frozen; a subclass's own
    # attributes are not.
    def __setattr__(self: Any, name: str, value: object) -> None:
        if type(self) is cls or name in known:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(this, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in known:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(this, self).__delattr__(name)

    def __replace__(self: Any, /, **changes: Any) -> Any:  # ``copy.replace`` (3.13)
        return dataclasses.replace(self, **changes)

    for method in (__init__, __repr__, __eq__, __hash__, __setattr__, __delattr__, __replace__):
        method.__qualname__ = f"{title}.{method.__name__}"
        setattr(cls, method.__name__, method)
    cls.__dataclass_fields__ = {f.name: f for f in fields}  # type: ignore[attr-defined]
    cls.__dataclass_params__ = _params()  # type: ignore[attr-defined]
    setattr(cls, "__match_args__", names)  # noqa: B010 (mypy: a class attribute it cannot see)
    setattr(cls, "__signature__", _Signature())  # noqa: B010
    return cls


if TYPE_CHECKING:

    @dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
    def frozen(cls: type[_T]) -> type[_T]:
        """A frozen dataclass, as ``@dataclass(frozen=True)`` makes it (see the module's text)."""

else:
    frozen = _frozen
