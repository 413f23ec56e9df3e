"""The JSON-schema subset the model's tool definitions use, checked before a tool runs.

Objects refuse keys their schema does not list (a model cannot smuggle `agent_id` in), strings
have lengths and patterns, numbers ranges, arrays sizes, enumerations their values.
"""

from __future__ import annotations

import re
from typing import Any


class ToolInputError(ValueError):
    pass


def validate(schema: dict, value: Any, where: str = "input") -> None:
    """The JSON-schema subset the tool definitions use; raises ToolInputError naming the field."""
    if "enum" in schema:
        if value not in schema["enum"]:
            raise ToolInputError(f"{where} must be one of {schema['enum']}")
        return
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise ToolInputError(f"{where} must be an object")
        extra = sorted(set(value) - set(schema["properties"]))
        if extra:
            raise ToolInputError(f"{where} has unknown field(s) {extra}; allowed: {sorted(schema['properties'])}")
        for name in schema.get("required", ()):
            if name not in value:
                raise ToolInputError(f"{where}.{name} is required")
        for name, item in value.items():
            validate(schema["properties"][name], item, f"{where}.{name}")
    elif kind == "array":
        if not isinstance(value, list) or len(value) > schema.get("maxItems", 100):
            raise ToolInputError(f"{where} must be a list of at most {schema.get('maxItems', 100)} items")
        for i, item in enumerate(value):
            validate(schema["items"], item, f"{where}[{i}]")
    elif kind == "string":
        if not isinstance(value, str) or len(value) > schema.get("maxLength", 10_000) \
                or len(value.strip()) < schema.get("minLength", 0):
            raise ToolInputError(f"{where} must be text of {schema.get('minLength', 0)}-"
                                 f"{schema.get('maxLength', 10_000)} characters")
        if "pattern" in schema and not re.fullmatch(schema["pattern"], value):
            raise ToolInputError(f"{where} is not in the expected format")
    elif kind in ("integer", "number"):
        ok_type = isinstance(value, int) if kind == "integer" else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or value != value:
            raise ToolInputError(f"{where} must be a {'whole ' if kind == 'integer' else ''}number")
        if not schema.get("minimum", float("-inf")) <= value <= schema.get("maximum", float("inf")):
            raise ToolInputError(f"{where} must be between {schema.get('minimum')} and {schema.get('maximum')}")
