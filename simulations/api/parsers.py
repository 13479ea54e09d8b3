"""The API's request parser: camelCase or snake_case JSON, at most ``MAX_DEPTH`` levels
deep. Deeper JSON is a 400: Python's decoder (and everything that walks the data
after it) would run out of recursion, which was a 500."""

from __future__ import annotations

from typing import Any

from djangorestframework_camel_case.parser import CamelCaseJSONParser
from rest_framework.exceptions import ParseError

from simulations.wire import MAX_DEPTH, depth_of


class JSONParser(CamelCaseJSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        too_deep = ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if depth_of(data) > MAX_DEPTH:
            raise too_deep
        return data
