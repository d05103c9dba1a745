"""DynamoDB's typed JSON, both ways, without boto3's resource layer: what the store writes and
reads, and what the table's stream delivers."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

Item = dict[str, Any]


def _to_attr(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, float):
        # repr keeps the shortest exact float text; DynamoDB keeps 38 digits
        return {"N": repr(round(value, 6))}
    if isinstance(value, Mapping):
        return {"M": {str(k): _to_attr(v) for k, v in value.items() if v is not None}}
    if isinstance(value, list | tuple):
        return {"L": [_to_attr(v) for v in value]}
    if isinstance(value, bytes):
        return {"B": value}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def _from_attr(attr: Mapping[str, Any]) -> Any:
    (kind, value), = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() and "." not in value else float(number)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _from_attr(v) for k, v in value.items()}
    if kind == "L":
        return [_from_attr(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {Decimal(v) for v in value}
    if kind == "B":
        return value
    raise TypeError(f"unknown DynamoDB type {kind}")


def marshal(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _to_attr(v) for k, v in item.items() if v is not None}


def unmarshal(image: Mapping[str, Any] | None) -> Item:
    return {k: _from_attr(v) for k, v in (image or {}).items()}


