"""JSON syntax (RFC 8259) checked without recursion, for documents nested deeper than ``json`` can decode.

``json`` decodes recursively: a valid object with an extra property nested a thousand deep raises
``RecursionError``, though the contract says any valid JSON is JSON and an extra property's content is
not validated. :func:`top_level_members` reads such a text with one loop and a stack of brackets (its
size bounded by the text, itself bounded by IoT Core's 128 KB message limit): it checks the whole
grammar (ASCII digits and whitespace only, strings without raw control characters, escapes as RFC 8259
lists them, no trailing text) and returns the top-level object's members as spans of the text, without
building any nested value. The caller decodes only the members it needs.

Why not a library: ``orjson`` stops at 1,024 levels (deeper is an error, not JSON it accepts), and
the ones that do not recurse (``ijson`` over yajl) are a compiled dependency the Lambda package, which is
the standard library and boto3, does not carry. The tests check this module against ``json`` on every
document ``json`` can decode, and on deep ones.
"""

from __future__ import annotations

import re

_WS = r"[ \t\n\r]*"
_STRING = r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'
_TOKEN = re.compile(
    rf"""{_WS}(?:
      (?P<opens>\[[\[ \t\n\r]*)
    | (?P<member>\{{{_WS}(?P<first>{_STRING}){_WS}:)
    | (?P<key>,{_WS}(?P<next>{_STRING}){_WS}:)
    | (?P<closes>[\]}}][\]}} \t\n\r]*)
    | (?P<scalar>{_STRING}|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)
    | (?P<comma>,)
    | (?P<empty>\{{)
    )""",
    re.VERBOSE,
)
"""One step of the grammar: a scalar, a run of '[' or of closing brackets (deep nesting is a few steps,
not one per level), an object's opening with its first key and colon, a comma with the next key and
colon, an array's comma, or an opening '{' (then only '}' may follow)."""
_SPACE = re.compile(_WS)
_NO_SPACE = str.maketrans("", "", " \t\n\r")
_OPENER = str.maketrans("]}", "[{")
_CLOSERS = frozenset("]}")

# What the grammar expects next.
_VALUE, _VALUE_OR_CLOSE, _KEY_OR_CLOSE, _COMMA_OR_CLOSE, _END = range(5)
_STARTS_VALUE = frozenset({_VALUE, _VALUE_OR_CLOSE})


class JSONSyntaxError(ValueError):
    """The text is not JSON (RFC 8259); the message says where."""


def _skip(text: str, position: int) -> int:
    match = _SPACE.match(text, position)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def top_level_members(text: str) -> list[tuple[str, int, int]] | None:
    """``(key, start, end)`` of each member of the top-level object, in order (``key`` is the key's JSON
    string literal, quotes included; ``text[start:end]`` the member's value), or ``None`` when the top
    level is valid JSON but not an object. Raises :class:`JSONSyntaxError` for anything else."""
    stack: list[str] = []
    members: list[tuple[str, int, int]] = []
    want = _VALUE
    key = ""
    start = 0
    position = 0
    object_top = False
    while want != _END:
        match = _TOKEN.match(text, position)
        if match is None:
            raise JSONSyntaxError(f"not JSON at character {_skip(text, position)}")
        kind = match.lastgroup or ""
        begin = match.start(kind)
        position = match.end()
        depth = len(stack)
        if kind == "scalar":
            if want not in _STARTS_VALUE:
                raise JSONSyntaxError(f"a value where none may be, at character {begin}")
            if depth == 1 and object_top:
                members.append((key, start, position))
            want = _COMMA_OR_CLOSE if depth else _END
        elif kind in ("opens", "member", "empty"):
            if want not in _STARTS_VALUE:
                raise JSONSyntaxError(f"a value where none may be, at character {begin}")
            if depth == 0:
                object_top = kind != "opens"
            elif depth == 1 and object_top:
                start = begin
            if kind == "opens":
                stack.extend(match.group(kind).translate(_NO_SPACE))
                want = _VALUE_OR_CLOSE
            else:
                stack.append("{")
                want = _VALUE if kind == "member" else _KEY_OR_CLOSE
                if kind == "member" and depth == 0:
                    key, start = match.group("first"), _skip(text, position)
        elif kind == "key":
            if want != _COMMA_OR_CLOSE or stack[-1] != "{":
                raise JSONSyntaxError(f"a key where none may be, at character {begin}")
            if depth == 1:
                key, start = match.group("next"), _skip(text, position)
            want = _VALUE
        elif kind == "comma":
            if want != _COMMA_OR_CLOSE or stack[-1] != "[":
                raise JSONSyntaxError(f"a comma where none may be, at character {begin}")
            want = _VALUE
        else:  # closes: each must close the innermost open bracket
            closers = match.group(kind).translate(_NO_SPACE)
            count = len(closers)
            first = closers[0]
            if (
                want == _VALUE
                or (want == _VALUE_OR_CLOSE and first != "]")
                or (want == _KEY_OR_CLOSE and first != "}")
                or count > depth
                or "".join(stack[depth - count :]) != closers.translate(_OPENER)[::-1]
            ):
                raise JSONSyntaxError(f"a closing bracket that closes nothing open, at character {begin}")
            del stack[depth - count :]
            if object_top and depth >= 2 and depth - count <= 1:  # a top-level member's value closed
                members.append((key, start, _closer_end(text, begin, depth - 1)))
            want = _COMMA_OR_CLOSE if stack else _END
    if _skip(text, position) != len(text):
        raise JSONSyntaxError(f"text after the JSON value, at character {position}")
    return members if object_top else None


def _closer_end(text: str, begin: int, nth: int) -> int:
    """The index just past the ``nth`` closing bracket from ``begin`` (a run of them, with whitespace)."""
    if text[begin : begin + nth].translate(_NO_SPACE) == text[begin : begin + nth]:
        return begin + nth  # no whitespace among them (the usual run)
    seen = 0
    position = begin
    while True:
        if text[position] in _CLOSERS:
            seen += 1
            if seen == nth:
                return position + 1
        position += 1
