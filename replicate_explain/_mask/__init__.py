"""The floor: masking of secrets in text and in exceptions, which every surface uses.

Masking depends on nothing above it: it imports nothing from diagnosis (snapshot, credential,
facts, matcher) and nothing but the standard library, so the birth mask, the hooks, the log
records, the integrations and the renderers all mask with the same code.

* :mod:`._redact`: :class:`Redactor`, the masking of one string (environment secrets, ``r8_``
  tokens, credentials after ``Bearer``/``Token``/``Authorization``).
* :mod:`._scrub`: the text of an exception chain masked in place (``args``, ``__notes__``, text
  attributes, exception groups' messages by a masked copy); objects that carry behaviour
  (requests, headers, dicts and lists) are never modified.
* :mod:`._logrecord`: the fields of a log record masked at creation (imports :mod:`logging`, so
  it is imported by name, not from here).
"""

from ._redact import MASK, SECRET_VARIABLES, Redactor, is_secret_variable, redact
from ._scrub import chain, masked_group, scrub_exception, scrub_text, scrub_value

__all__ = [
    "MASK",
    "SECRET_VARIABLES",
    "Redactor",
    "chain",
    "is_secret_variable",
    "masked_group",
    "redact",
    "scrub_exception",
    "scrub_text",
    "scrub_value",
]
