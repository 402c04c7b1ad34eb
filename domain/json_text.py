"""A cursor over a JSON text: objects and arrays walked member by member. Pure.

`JsonCursor` reads what `json.loads` reads (strict: no control characters in strings, no
trailing commas), but lets its caller take the outer levels one member or item at a time and
decode only what lies below whole, so that a large array is never held at once. Values are
decoded by the `decoder` given (its hooks apply); a repeated key in an object that the cursor
walks raises the same `exception` as the decoder's own `object_pairs_hook` would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

_WHITESPACE = re.compile(r"[ \t\n\r]*")


class JsonCursor:
    """A position in `text`. Raises `json.JSONDecodeError` (a `ValueError`) where the text is
    not JSON, and whatever the decoder's hooks raise."""

    def __init__(
        self,
        text: str,
        decoder: json.JSONDecoder,
        repeated_key: Callable[[str], Exception],
    ) -> None:
        self.text = text
        self.position = 0
        self._decoder = decoder
        self._repeated_key = repeated_key

    def peek(self) -> str:
        """The next character after whitespace ("" at the end); the cursor moves onto it."""
        found = _WHITESPACE.match(self.text, self.position)
        assert found is not None  # the pattern matches the empty string
        self.position = found.end()
        return self.text[self.position : self.position + 1]

    def value(self) -> Any:
        """The whole value at the cursor, decoded; the cursor moves past it."""
        self.peek()
        value, self.position = self._decoder.raw_decode(self.text, self.position)
        return value

    def members(self) -> Iterator[str]:
        """The keys of the object at the cursor, in the text's order. After each key the cursor
        is at its value, which the caller reads (`value`, `members`, `items`) before asking for
        the next key."""
        self._expect("{")
        if self.peek() == "}":
            self.position += 1
            return
        seen: set[str] = set()
        while True:
            if self.peek() != '"':
                raise self._error("Expecting property name enclosed in double quotes")
            key: str = self.value()
            if key in seen:
                raise self._repeated_key(key)
            seen.add(key)
            self._expect(":")
            yield key
            if self._separator("}"):
                return

    def items(self) -> Iterator[Any]:
        """The items of the array at the cursor, each decoded whole, in order."""
        self._expect("[")
        if self.peek() == "]":
            self.position += 1
            return
        while True:
            yield self.value()
            if self._separator("]"):
                return

    def end(self) -> None:
        """Only whitespace may remain."""
        if self.peek():
            raise self._error("Extra data")

    def _separator(self, closing: str) -> bool:
        """Past a `,` (False) or the `closing` bracket (True)."""
        found = self.peek()
        if found not in (",", closing):
            raise self._error("Expecting ',' delimiter")
        self.position += 1
        return found == closing

    def _expect(self, char: str) -> None:
        if self.peek() != char:
            raise self._error(f"Expecting {char!r}")
        self.position += 1

    def _error(self, message: str) -> json.JSONDecodeError:
        return json.JSONDecodeError(message, self.text, self.position)
