"""The catalog query language: grammar and parser (lark), syntax tree, field registry and the
compiler to SQLAlchemy Core expressions with bound parameters. Private; the public entry points
are :meth:`Repository.query.find`, :meth:`Repository.query.find_ids` and :meth:`Repository.query.fields`."""

from ._ast import And, Compare, Exists, Field, In, Like, Node, Not, Or, to_text
from ._compile import Compiler, distinct_values
from ._fields import FieldInfo, static_fields
from ._parser import QuerySyntaxError, parse

__all__ = [
    "And",
    "Compare",
    "Compiler",
    "Exists",
    "Field",
    "FieldInfo",
    "In",
    "Like",
    "Node",
    "Not",
    "Or",
    "QuerySyntaxError",
    "distinct_values",
    "parse",
    "static_fields",
    "to_text",
]
