"""Small value classes without ``dataclasses``, for modules on the always-on monitor's path.

``import dataclasses`` loads ``inspect`` and with it ``ast``, ``dis`` and ``tokenize``:
about 1 MiB of RSS added to every process the ``production`` monitor watches (issue
#15), for a module the monitor needs only to generate a few methods. ``@record`` (and
``@record(frozen=True)``) generates the ones memlens's value classes use, from the class
annotations in order (inherited records' fields first):

- ``__init__`` with the class attributes as defaults and :func:`field`
  ``default_factory`` values made per instance, then ``__post_init__`` if defined;
- ``__repr__``, ``__eq__`` (same class, fields equal) and ``__match_args__``;
- frozen: assignment raises :class:`FrozenRecordError` (an ``AttributeError``) and
  ``__hash__`` hashes the fields; mutable records are unhashable, as dataclasses are.

:func:`fields`, :func:`asdict` and :func:`replace` do what the ``dataclasses`` functions
of the same names do (``fields`` returns the names; ``asdict`` copies records, lists,
tuples and dicts recursively and keeps other values as they are), without importing
it. The ``dataclasses`` functions themselves work on records too: a record's
``__dataclass_fields__`` is built the first time something looks for it. Instances keep
a ``__dict__``, so ``copy``, ``pickle`` and ``vars()`` work unchanged. Type checkers
see a dataclass (``dataclass_transform``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_kwargs: Any) -> Any:
        return lambda f: f


T = TypeVar("T")
_MISSING: Any = object()


class FrozenRecordError(AttributeError):
    """An assignment to a field of a frozen record."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


@overload
def field(*, default: T) -> T: ...
@overload
def field(*, default_factory: Callable[[], T]) -> T: ...
def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None) -> Any:
    """A field's default: ``default``, or ``default_factory()`` called for each instance."""
    if default_factory is None:
        return default
    if default is not _MISSING:
        raise TypeError("a field takes default or default_factory, not both")
    return _Factory(default_factory)


class _DataclassFields:
    """A record's ``__dataclass_fields__``, built on first use.

    Code written for dataclasses (``dataclasses.asdict``, ``replace``, ``fields``,
    ``is_dataclass``, pytest's and rich's displays) then works on records too. Whoever
    looks has imported ``dataclasses`` already; the monitor's path never looks.
    """

    def __get__(self, obj: object, cls: type) -> dict[str, Any]:
        built: dict[str, Any] | None = cls.__dict__.get("_record_dataclass_fields")
        if built is None:
            built = _dataclass_fields(cls)
            type.__setattr__(cls, "_record_dataclass_fields", built)
        return built


def _dataclass_fields(cls: type) -> dict[str, Any]:
    import dataclasses

    annotations: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        annotations.update(base.__dict__.get("__annotations__", {}))
    out: dict[str, Any] = {}
    for name in fields(cls):
        value = cls.__record_defaults__.get(name, _MISSING)  # type: ignore[attr-defined]
        if isinstance(value, _Factory):
            spec = dataclasses.field(default_factory=value.make)
        elif value is _MISSING:
            spec = dataclasses.field()
        else:
            spec = dataclasses.field(default=value)
        spec.name, spec.type = name, annotations.get(name, Any)
        spec._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
        out[name] = spec
    return out


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _build(cls: type, frozen: bool) -> type:
    names: list[str] = []
    defaults: dict[str, Any] = {}
    for base in reversed(cls.__mro__[1:]):
        for name in getattr(base, "__record_fields__", ()):
            if name not in names:
                names.append(name)
        defaults.update(getattr(base, "__record_defaults__", {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        if name not in names:
            names.append(name)
        value = cls.__dict__.get(name, _MISSING)
        if value is not _MISSING:
            defaults[name] = value
            if isinstance(value, _Factory):
                delattr(cls, name)  # made per instance, never shared through the class
        else:
            defaults.pop(name, None)
    seen_default = False
    for name in names:
        if name in defaults:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one with")
    qualname = f"{cls.__qualname__}.__init__"

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        # Compiled on the first instance: most record classes on the monitor's path are
        # never instantiated in a run, and compiling costs ~0.1-0.5 ms a class.
        real = _compile_init(names, defaults, frozen, hasattr(cls, "__post_init__"))
        real.__qualname__ = qualname
        type.__setattr__(cls, "__init__", real)
        real(self, *args, **kwargs)

    init.__qualname__ = qualname
    values: Callable[[Any], Any] = operator.attrgetter(*names) if names else (lambda _: ())
    if len(names) == 1:
        one = values
        values = lambda self: (one(self),)  # noqa: E731 - a tuple for one field too

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is self.__class__:
            return bool(values(self) == values(other))
        return NotImplemented

    methods: dict[str, Any] = {"__init__": init, "__repr__": __repr__, "__eq__": __eq__}
    if frozen:

        def __setattr__(self: Any, name: str, value: object) -> None:
            raise FrozenRecordError(f"cannot assign to field {name!r}")

        def __delattr__(self: Any, name: str) -> None:
            raise FrozenRecordError(f"cannot delete field {name!r}")

        def __hash__(self: Any) -> int:
            return hash(values(self))

        methods.update(__setattr__=__setattr__, __delattr__=__delattr__, __hash__=__hash__)
    elif "__eq__" not in cls.__dict__:
        methods["__hash__"] = None
    for name, method in methods.items():
        if name not in cls.__dict__ or name == "__init__":
            if callable(method):
                method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)
    cls.__record_fields__ = tuple(names)  # type: ignore[attr-defined]
    cls.__record_defaults__ = defaults  # type: ignore[attr-defined]
    cls.__record_frozen__ = frozen  # type: ignore[attr-defined]
    cls.__match_args__ = tuple(names)  # type: ignore[attr-defined,misc]
    cls.__dataclass_fields__ = _DataclassFields()  # type: ignore[attr-defined]
    return cls


def _compile_init(
    names: list[str], defaults: dict[str, Any], frozen: bool, post_init: bool
) -> Callable[..., None]:
    env: dict[str, Any] = {"_M": _MISSING, "_D": defaults, "_set": object.__setattr__}
    params: list[str] = []
    body: list[str] = []
    for name in names:
        value = defaults.get(name, _MISSING)
        if value is _MISSING:
            params.append(name)
        elif isinstance(value, _Factory):
            params.append(f"{name}=_M")
            body.append(f" if {name} is _M: {name} = _D[{name!r}].make()")
        else:
            params.append(f"{name}=_D[{name!r}]")
        body.append(f" _set(self, {name!r}, {name})" if frozen else f" self.{name} = {name}")
    if post_init:
        body.append(" self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or [" pass"])
    exec(source, env)  # noqa: S102 - our own generated source, as dataclasses does
    made: Callable[..., None] = env["__init__"]
    return made


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, frozen: bool = False) -> Callable[[type[T]], type[T]]: ...
@dataclass_transform(field_specifiers=(field,))
def record(cls: type[T] | None = None, /, *, frozen: bool = False) -> Any:
    """Make ``cls`` a record (see the module docstring); ``frozen`` refuses assignment."""
    if cls is None:
        return lambda c: _build(c, frozen)
    return _build(cls, frozen)


def is_record(obj: object) -> bool:
    """Whether ``obj`` is a record instance (not a record class)."""
    return hasattr(type(obj), "__record_fields__")


def fields(obj: object) -> tuple[str, ...]:
    """The field names of a record or record class, in order."""
    cls = obj if isinstance(obj, type) else type(obj)
    try:
        return cls.__record_fields__  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(f"{cls.__name__} is not a record") from None


def asdict(obj: Any) -> dict[str, Any]:
    """A record as a dict, records, lists, tuples and dicts inside it copied too."""
    return {name: _plain(getattr(obj, name)) for name in fields(obj)}


def _plain(value: Any) -> Any:
    if hasattr(type(value), "__record_fields__") and not isinstance(value, type):
        return asdict(value)
    if type(value) is list or type(value) is tuple:
        return type(value)(_plain(v) for v in value)
    if type(value) is dict:
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def replace(obj: T, **changes: Any) -> T:
    """A copy of the record ``obj`` with ``changes`` applied (``__post_init__`` runs)."""
    values = {name: getattr(obj, name) for name in fields(obj)}
    values.update(changes)
    return type(obj)(**values)
