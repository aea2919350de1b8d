"""JSON-like dicts to and from google.protobuf.Struct (payloads, inputs, outputs)."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from google.protobuf import json_format, struct_pb2


def to_struct(value: Optional[Mapping[str, Any]]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if value:
        struct.update(value)
    return struct


def to_dict(struct: struct_pb2.Struct) -> Dict[str, Any]:
    """A Struct as a dict (numbers come back as floats, as JSON has only one number type)."""
    return json_format.MessageToDict(struct)
