"""The one way the library turns models into bytes and back: msgspec JSON.

JSON keeps stored values readable from ``redis-cli`` and by dashboards in any language;
msgspec makes it fast and validates on the way in. No pickle, no eval.

Example:
    >>> from fullon_cache.models import Balance
    >>> decode(encode(Balance(total=1.0)), Balance)
    Balance(total=1.0, free=0.0, used=0.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import msgspec

from fullon_cache.exceptions import CacheDataError

__all__ = ["as_model", "check_json", "convert", "decode", "decode_all", "decode_any", "encode"]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def encode(value: Any) -> bytes:
    """Encode a model, or any JSON-able builtin value, to JSON bytes.

    Example:
        >>> encode({"a": 1})
        b'{"a":1}'
    """
    try:
        return _encoder.encode(value)
    except (TypeError, OverflowError) as exc:
        raise TypeError(f"cannot encode {type(value).__name__}: {exc}") from exc


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(model: type[T]) -> msgspec.json.Decoder[T]:
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders[model] = msgspec.json.Decoder(model)
    return decoder


def decode(data: bytes | str, model: type[T]) -> T:
    """Decode JSON bytes stored by the library into ``model``.

    A stored value that does not decode raises :class:`CacheDataError` (it is data
    corruption, not bad input from the caller).

    Example:
        >>> from fullon_cache.models import Balance
        >>> decode(b'{"total": 3}', Balance).total
        3.0
    """
    try:
        return _decoder(model).decode(data)
    except msgspec.DecodeError as exc:
        raise CacheDataError(f"stored {model.__name__} does not decode: {exc}") from exc


def decode_all(items: Iterable[bytes | str], model: type[T]) -> list[T]:
    """Decode a batch of stored values into ``model``, like :func:`decode` on each (the
    decoder is looked up once for the batch, not once per value).

    Example:
        >>> decode_all([b"[1, 2]", b"[3]"], list[float])
        [[1.0, 2.0], [3.0]]
    """
    decoder = _decoder(model).decode
    try:
        return [decoder(item) for item in items]
    except msgspec.DecodeError as exc:
        raise CacheDataError(f"stored {model.__name__} does not decode: {exc}") from exc


def decode_any(data: bytes | str) -> Any:
    """Decode JSON bytes into builtin Python values.

    Example:
        >>> decode_any(b'[1, "a"]')
        [1, 'a']
    """
    try:
        return _any_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise CacheDataError(f"stored value does not decode: {exc}") from exc


def convert(data: Any, model: type[T]) -> T:
    """Validate builtin data (a mapping) into ``model``, ignoring unknown keys.

    Wrong types raise TypeError, bad values ValueError.

    Example:
        >>> from fullon_cache.models import Balance
        >>> convert({"total": 1, "x": 2}, Balance).total
        1.0
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{model.__name__} data must be a mapping, got {type(data).__name__}")
    try:
        return msgspec.convert(dict(data), model, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if message.startswith("Expected"):
            raise TypeError(f"{model.__name__}: {message}") from exc
        raise ValueError(f"{model.__name__}: {message}") from exc


def check_json(value: object, where: str) -> None:
    """TypeError/ValueError unless ``value`` is plain JSON data: str-keyed mappings,
    lists/tuples, str, int, bool, None and finite floats (no bytes, NaN or infinity),
    so what is stored reads back equal.

    Example:
        >>> check_json({"a": [1, 2.5, None]}, "data")
        >>> check_json({"a": float("nan")}, "data")
        Traceback (most recent call last):
        ...
        ValueError: data['a'] must be a finite number, got nan
    """
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number, got {value!r}")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be str, got {type(key).__name__}")
            check_json(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]")
        return
    raise TypeError(f"{where} is not JSON data: {type(value).__name__}")


def as_model(value: Any, model: type[T]) -> T:
    """Accept a model, any object with ``to_dict()`` (a fullon_orm model) or a mapping.

    Example:
        >>> from fullon_cache.models import Balance
        >>> as_model({"total": 5}, Balance).total
        5.0
    """
    if isinstance(value, model):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        value = to_dict()
    if isinstance(value, Mapping):
        return model.from_dict(value)  # type: ignore[attr-defined, no-any-return]
    raise TypeError(
        f"expected {model.__name__}, a mapping or an object with to_dict(), "
        f"got {type(value).__name__}"
    )
