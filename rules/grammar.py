"""The condition grammar: tokens and a recursive-descent parser producing a small AST.

::

    expr      := or
    or        := and ("or" and)*
    and       := unary ("and" unary)*
    unary     := "not" unary | "(" expr ")" | predicate | NAME      # NAME: macro or bool field
    predicate := PATH "exists"
               | PATH cmp value                                     # = == != < <= > >=
               | PATH ["not"] "in" ( "(" item ("," item)* ")" | LIST_NAME )
               | PATH strop ( value | "(" item ("," item)* ")" | LIST_NAME )
    strop     := contains | startswith | endswith | glob | regex
    value     := STRING | NUMBER | true | false | null | PATH       # PATH: another field
    item      := STRING | NUMBER | true | false | null | NAME       # NAME: a list, else a bare string

Parsing is pure syntax; names are resolved by `rules.conditions`.

>>> parse('action_category = "exec" and not tool_name in (ls, "cat")')
And(items=(Cmp(path='action_category', op='=', rhs=Lit(value='exec', offset=18), offset=0), \
Not(item=In(path='tool_name', items=(Name(name='ls', offset=47), Lit(value='cat', offset=51)), \
list_name=None, negate=False, offset=33), offset=29)), offset=0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "startswith", "endswith", "glob", "regex",
                      "exists", "true", "false", "null"})
CMP_OPS = frozenset({"=", "==", "!=", "<", "<=", ">", ">="})
STR_OPS = frozenset({"contains", "startswith", "endswith", "glob", "regex"})

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<num>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<op>==|!=|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][\w-]*(?:\.[\w-]+)*)
  | (?P<bad>"|'|.)
""", re.VERBOSE)


class ParseError(Exception):
    def __init__(self, message: str, offset: int, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.offset, self.hint = message, offset, hint


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any
    offset: int


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Any, ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Any, ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Not:
    item: Any
    offset: int


@dataclass(frozen=True, slots=True)
class Cmp:
    path: str
    op: str
    rhs: Lit | Name
    offset: int


@dataclass(frozen=True, slots=True)
class In:
    path: str
    items: tuple[Lit | Name, ...] | None
    list_name: Name | None
    negate: bool
    offset: int


@dataclass(frozen=True, slots=True)
class StrOp:
    path: str
    op: str
    rhs: Lit | Name | tuple[Lit | Name, ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Exists:
    path: str
    offset: int


Token = tuple[str, Any, int]


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    for m in _TOKEN.finditer(source):
        kind, text, pos = m.lastgroup, m.group(), m.start()
        if kind == "ws":
            continue
        if kind == "bad":
            if text in "\"'":
                raise ParseError("unterminated string", pos, f"close the string with {text}")
            raise ParseError(f"unexpected character {text!r}", pos)
        if kind == "str":
            tokens.append(("str", _unquote(text), pos))
        elif kind == "num":
            tokens.append(("num", float(text) if any(c in text for c in ".eE") else int(text), pos))
        elif kind == "name" and text in KEYWORDS:
            tokens.append(("kw", text, pos))
        else:
            tokens.append((kind or "bad", text, pos))
    tokens.append(("end", None, len(source)))
    return tokens


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse(source: str) -> Any:
    """Parse a condition into an AST; raises :class:`ParseError` with the offset of the problem."""
    parser = _Parser(tokenize(source))
    if parser.peek()[0] == "end":
        raise ParseError("empty condition", 0, "write an expression such as: action_category = \"exec\"")
    node = parser.expr()
    kind, value, pos = parser.peek()
    if kind != "end":
        raise ParseError(f"unexpected {value!r} after a complete expression", pos,
                         "join expressions with 'and' / 'or'")
    return node


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def is_kw(self, word: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok[0] == "kw" and tok[1] == word

    def expr(self) -> Any:
        return self._chain("or", Or, self.and_)

    def and_(self) -> Any:
        return self._chain("and", And, self.unary)

    def _chain(self, word: str, cls: type, sub: Any) -> Any:
        first = sub()
        items = [first]
        while self.is_kw(word):
            self.take()
            items.append(sub())
        return first if len(items) == 1 else cls(tuple(items), first.offset)

    def unary(self) -> Any:
        kind, value, pos = self.peek()
        if kind == "kw" and value == "not":
            self.take()
            return Not(self.unary(), pos)
        if kind == "punct" and value == "(":
            self.take()
            node = self.expr()
            self.expect(")", "close the parenthesis")
            return node
        if kind == "name":
            return self.predicate()
        raise ParseError(f"expected a field, macro, 'not' or '(' but found {_show(value)}", pos)

    def expect(self, punct: str, hint: str) -> None:
        kind, value, pos = self.take()
        if kind != "punct" or value != punct:
            raise ParseError(f"expected {punct!r} but found {_show(value)}", pos, hint)

    def predicate(self) -> Any:
        _, path, pos = self.take()
        kind, value, opos = self.peek()
        if kind == "op":
            self.take()
            return Cmp(path, "=" if value == "==" else value, self.value(), pos)
        if kind == "kw" and value == "exists":
            self.take()
            return Exists(path, pos)
        negate = False
        if kind == "kw" and value == "not" and self.is_kw("in", 1):
            self.take()
            negate = True
        if self.is_kw("in"):
            self.take()
            if self.peek()[0] == "name":
                _, name, npos = self.take()
                return In(path, None, Name(name, npos), negate, pos)
            return In(path, self.items(), None, negate, pos)
        if kind == "kw" and value in STR_OPS:
            self.take()
            if self.peek()[:2] == ("punct", "("):
                return StrOp(path, value, self.items(), pos)
            return StrOp(path, value, self.value(), pos)
        return Name(path, pos)  # a macro or a boolean field, resolved by the compiler

    def value(self) -> Lit | Name:
        kind, value, pos = self.take()
        if kind in ("str", "num"):
            return Lit(value, pos)
        if kind == "kw" and value in ("true", "false", "null"):
            return Lit({"true": True, "false": False, "null": None}[value], pos)
        if kind == "name":
            return Name(value, pos)
        raise ParseError(f"expected a value but found {_show(value)}", pos,
                         "values are quoted strings, numbers, true, false, null or another field")

    def items(self) -> tuple[Lit | Name, ...]:
        self.expect("(", "a value list looks like (a, \"b\", 3)")
        out: list[Lit | Name] = []
        while True:
            out.append(self.value())
            kind, value, pos = self.take()
            if kind == "punct" and value == ")":
                return tuple(out)
            if not (kind == "punct" and value == ","):
                raise ParseError(f"expected ',' or ')' in a value list but found {_show(value)}", pos)


def _show(value: Any) -> str:
    return "the end of the condition" if value is None else repr(value)
