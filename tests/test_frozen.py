"""_frozen: a class made by ``frozen`` behaves as the same class made by ``@dataclass(frozen=True)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from replicate_explain import Explanation
from replicate_explain._frozen import frozen


def _pair() -> tuple[type[Any], type[Any]]:
    """The same class body, made by ``frozen`` and by ``dataclasses``."""

    def body(decorate: Any) -> type[Any]:
        @decorate
        class Point:
            """A point."""

            x: int
            y: int = 0
            tags: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
            note: str = dataclasses.field(default="", repr=False, compare=False)

            def norm(self) -> int:
                return abs(self.x) + abs(self.y)

        return Point

    return body(frozen), body(dataclasses.dataclass(frozen=True))


OURS, THEIRS = _pair()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, 2), {}), ((), {"x": 3, "note": "n"}), ((1, 2, MappingProxyType({"a": "b"}), "z"), {})],
)
def test_construction_repr_eq_and_hash_are_the_dataclass_ones(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    ours, theirs = OURS(*args, **kwargs), THEIRS(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert [(f.name, getattr(ours, f.name)) for f in dataclasses.fields(ours)] == [
        (f.name, getattr(theirs, f.name)) for f in dataclasses.fields(theirs)
    ]
    assert ours == OURS(*args, **kwargs)
    assert ours != theirs  # another class: not equal, as between two dataclasses
    assert ours.norm() == theirs.norm()


def test_fields_replace_and_is_dataclass_work_as_on_a_dataclass() -> None:
    point = OURS(1, 2)
    assert dataclasses.is_dataclass(point)
    assert [(f.name, f.type, f.repr, f.compare) for f in dataclasses.fields(point)] == [
        (f.name, f.type, f.repr, f.compare) for f in dataclasses.fields(THEIRS(1))
    ]
    assert dataclasses.replace(point, y=5) == OURS(1, 5)
    assert OURS(1, note="a") == OURS(1, note="b")  # compare=False
    assert OURS(1).tags is not OURS(1).tags  # a factory runs per instance


def test_hash_follows_the_compared_fields() -> None:
    @frozen
    class Key:
        a: str
        b: tuple[int, ...] = ()

    @dataclasses.dataclass(frozen=True)
    class Reference:
        a: str
        b: tuple[int, ...] = ()

    assert hash(Key("x", (1,))) == hash(Reference("x", (1,)))
    assert {Key("x"), Key("x")} == {Key("x")}
    assert dataclasses.asdict(Key("x", (1,))) == dataclasses.asdict(Reference("x", (1,))) == {"a": "x", "b": (1,)}
    with pytest.raises(TypeError):
        hash(OURS(1))  # a mapping field: unhashable, as the dataclass is


def test_instances_are_frozen() -> None:
    point = OURS(1)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
        point.x = 2
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'x'"):
        del point.x


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "Point.__init__() missing 1 required argument: 'x'"),
        ((1,), {"z": 2}, "Point.__init__() got an unexpected keyword argument 'z'"),
        ((1,), {"x": 2}, "Point.__init__() got multiple values for argument 'x'"),
        ((1, 2, {}, "", 5), {}, "Point.__init__() takes 5 positional arguments but 6 were given"),
    ],
)
def test_wrong_arguments_are_a_type_error_naming_the_argument(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError) as raised:
        OURS(*args, **kwargs)
    assert str(raised.value).endswith(message)


def test_what_it_does_not_support_is_refused_not_guessed() -> None:
    with pytest.raises(TypeError, match="defines __post_init__"):

        @frozen
        class Checked:
            a: int

            def __post_init__(self) -> None:
                pass

    @frozen
    class Base:
        a: int

    with pytest.raises(TypeError, match="inherits fields from"):

        @frozen
        class Child(Base):
            b: int


def test_the_public_explanation_is_still_a_dataclass() -> None:
    assert dataclasses.is_dataclass(Explanation)
    assert [f.name for f in dataclasses.fields(Explanation)][:2] == ["rule_id", "title"]


def test_a_dataclass_can_subclass_it_as_it_would_a_dataclass() -> None:
    @dataclasses.dataclass(frozen=True)
    class Tagged(OURS):  # type: ignore[misc, valid-type]
        label: str = "x"

    @dataclasses.dataclass(frozen=True)
    class Reference(THEIRS):  # type: ignore[misc, valid-type]
        label: str = "x"

    assert repr(Tagged(1, 2, label="y")) == repr(Reference(1, 2, label="y")).replace("Reference", "Tagged")
    assert [f.name for f in dataclasses.fields(Tagged)] == ["x", "y", "tags", "note", "label"]


def test_a_plain_subclass_keeps_its_own_attributes_settable_and_the_fields_frozen() -> None:
    class Plain(OURS):  # type: ignore[misc, valid-type]
        pass

    point = Plain(1)
    point.extra = 2
    assert point.extra == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 3


def test_replace_signature_and_help_are_the_dataclass_ones() -> None:
    import inspect

    assert OURS(1).__replace__(y=4) == OURS(1, 4)  # ``copy.replace`` on 3.13
    assert str(inspect.signature(OURS)) == str(inspect.signature(THEIRS))
    assert str(inspect.signature(Explanation)).startswith("(rule_id: 'str', title: 'str'")


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ("a: int = 0\n    b: int", TypeError, "non-default argument 'b' follows default argument"),
        ("a: list = []", ValueError, "mutable default <class 'list'> for field a is not allowed"),
        ("a: int = dataclasses.field(init=False, default=0)", TypeError, "is field(init=False)"),
    ],
)
def test_a_class_dataclasses_would_refuse_is_refused(body: str, error: type[Exception], message: str) -> None:
    namespace: dict[str, Any] = {"dataclasses": dataclasses}
    exec(f"class Bad:\n    {body}\n", namespace)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        frozen(namespace["Bad"])
