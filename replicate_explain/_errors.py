"""Public exception types (kept in a tiny module so importing them costs nothing)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    pass


class RuleError(ValueError):
    """A rule file is malformed: names the file, the key path, what was expected, and a hint.

    ``str()`` reads ``path:line: key: problem (did you mean 'x'?)``.
    """

    def __init__(
        self,
        path: str,
        key: str,
        problem: str,
        *,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        self.line = line
        self.hint = hint
        where = f"{path}:{line}" if line else path
        text = f"{where}: {key}: {problem}" if key else f"{where}: {problem}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class RuleErrors(RuleError):
    """Every problem of one rule file (``errors``, in line order); it reads as the first.

    ``str()`` is the first problem and, when there are more, how many and the command that
    lists them all: the excepthook skips the file and reports it in one line.
    """

    def __init__(self, errors: tuple[RuleError, ...]) -> None:
        first = errors[0]
        super().__init__(first.path, first.key, first.problem, line=first.line, hint=first.hint)
        self.errors = errors
        if len(errors) > 1:
            more = len(errors) - 1
            self.args = (
                f"{self.args[0]} (and {more} more problem{'s' if more != 1 else ''}: "
                f"replicate-explain rules check {first.path})",
            )
