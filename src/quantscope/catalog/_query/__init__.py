"""The catalog query language: grammar and parser (lark), syntax tree, field registry and the
compiler to SQLAlchemy Core expressions with bound parameters. Private; the public entry points
are ``repo.query.find``, ``repo.query.find_ids`` and ``repo.query.fields``
(:class:`~quantscope.catalog._find.QueryMethods`)."""

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
