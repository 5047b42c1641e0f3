"""Constructor checks shared by the window and pool blocks: each raises ``TypeError`` for a
wrong type and ``ValueError`` for a wrong value, with a message naming the parameter."""

from __future__ import annotations

from amaranth import Shape

__all__ = ["check_int", "check_pair", "element_shape_of", "shape_range"]


def check_int(name: str, value, minimum: int) -> int:
    """``value``, an int of at least ``minimum`` (not a bool)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < minimum:
        rule = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {rule}, not {value!r}")
    return value


def check_pair(name: str, value, minimum: int) -> tuple[int, int]:
    """``value``, an (h, w) pair of ints each at least ``minimum``, as a tuple."""
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(f"{name} must be a pair of ints (h, w), not {value!r}")
    if min(value) < minimum:
        rule = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {rule} in both axes, not {tuple(value)!r}")
    return int(value[0]), int(value[1])


def element_shape_of(element) -> Shape:
    """The :class:`~amaranth.hdl.Shape` of a stream element (any shape-castable, at least one
    bit wide)."""
    try:
        shape = Shape.cast(element)
    except TypeError:
        raise TypeError(f"element must be a shape, not {element!r}") from None
    if shape.width < 1:
        raise ValueError(f"element must be at least one bit wide, not {element!r}")
    return shape


def shape_range(shape: Shape) -> tuple[int, int]:
    """The smallest and largest value of ``shape``."""
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1
