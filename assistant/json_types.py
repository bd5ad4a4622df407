"""Numbers as JSON sends them, for every request body (profile, turn numbers, limits).

pydantic's lax mode would take `true` as 1 and "800" as 800, which the OpenAPI schema refuses;
these types keep what JSON Schema's `integer` and `number` allow (1.0 is an integer) and refuse
booleans and texts with a French message (tests/test_api_types.py, schemathesis in CI).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator


def json_number(value):
    """Return `value` unchanged unless it is a boolean, a text or bytes (ValueError, in French)."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError("un nombre est attendu")
    return value


JsonInt = Annotated[int, BeforeValidator(json_number)]
JsonFloat = Annotated[float, BeforeValidator(json_number)]
