"""User-facing errors: each says where (file, layer, field) and what was expected."""

from __future__ import annotations

__all__ = ["ConfigError", "DescriptionError", "UserError"]


class UserError(Exception):
    """Base of errors caused by user input. The CLI prints them on one line, exit status 2.

    Subclasses also derive from ``ValueError`` or ``TypeError``, so library callers can catch
    them the usual way.
    """


class DescriptionError(UserError, ValueError):
    """A network description (or a layer built from Python) is malformed.

    Parameters
    ----------
    message
        What was expected, in the form "must be <rule>, not <value>".
    file, layer, field
        Where, as far as known; :meth:`at` fills in what an outer level knows.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        layer: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.layer = layer
        self.field = field
        super().__init__(str(self))

    def at(self, *, file=None, layer=None, field=None) -> DescriptionError:
        """A copy with the missing location parts filled in."""
        return DescriptionError(
            self.message,
            file=self.file or file,
            layer=self.layer or layer,
            field=self.field or field,
        )

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.layer:
            where.append(f"layer {self.layer!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        return ": ".join([*where, self.message])


class ConfigError(UserError, ValueError):
    """A hardware configuration that the network cannot take (impossible folding, ...)."""
