"""The tools' input: checks of the arguments an AI sent, with one-line errors."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nexysync_mcp.errors import ToolFailure

__all__ = ["Arguments", "required_action"]


class Arguments:
    """The arguments of one call, read with the checks each action needs.

    A missing value, JSON null and an empty string all mean "not given".

    Args:
        action: The action being served (named in error messages).
        values: The arguments as the client sent them.
    """

    def __init__(self, action: str, values: Mapping[str, Any]) -> None:
        self.action = action
        self._values = {key: value for key, value in values.items() if value is not None and value != ""}

    def text(self, name: str, *, required: bool = False) -> str | None:
        """Return a string argument (numbers are taken as their text).

        Raises:
            ToolFailure: it is required and missing, or not a string.
        """
        value = self._values.get(name)
        if value is None:
            if required:
                raise ToolFailure(f"`{name}` is required for action={self.action}.")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ToolFailure(f"`{name}` must be a string.")
        return str(value)

    def required_text(self, name: str) -> str:
        """Return a string argument that must be given.

        Raises:
            ToolFailure: it is missing or not a string.
        """
        value = self.text(name, required=True)
        assert value is not None
        return value

    def choice(self, name: str, options: Sequence[str], default: str | None = None) -> str | None:
        """Return a string argument that must be one of ``options`` (``default`` when not given).

        Raises:
            ToolFailure: it is not one of them.
        """
        value = self.text(name)
        if value is None:
            return default
        if value not in options:
            raise ToolFailure(f"`{name}` must be one of {', '.join(options)}; got {value!r}.")
        return value

    def number(self, name: str, *, default: float, low: float, high: float) -> float:
        """Return a number argument within ``[low, high]`` (``default`` when not given).

        Raises:
            ToolFailure: it is not a number or out of range.
        """
        value = self._values.get(name)
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ToolFailure(f"`{name}` must be a number of seconds; got {value!r}.") from None
        if isinstance(value, bool) or not math.isfinite(number) or not low <= number <= high:
            raise ToolFailure(f"`{name}` must be from {low:g} to {high:g}; got {value!r}.")
        return number

    def integer(self, name: str, *, low: int) -> int | None:
        """Return a whole-number argument of at least ``low`` (None when not given); "3" is taken as 3.

        Raises:
            ToolFailure: it is not a whole number, or below ``low``.
        """
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ToolFailure(f"`{name}` must be a whole number; got {value!r}.")
        try:
            number = float(value)
        except ValueError:
            raise ToolFailure(f"`{name}` must be a whole number; got {value!r}.") from None
        if not number.is_integer() or number < low:
            raise ToolFailure(f"`{name}` must be a whole number of at least {low}; got {value!r}.")
        return int(number)

    def flag(self, name: str) -> bool:
        """Return a true/false argument (false when not given); "true" and "false" are taken too.

        Raises:
            ToolFailure: it is neither.
        """
        value = self._values.get(name, False)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise ToolFailure(f"`{name}` must be true or false; got {value!r}.")
        return value

    def strings(self, name: str, *, required: bool = False) -> list[str]:
        """Return a list of strings; a single string may list several, separated by commas or spaces.

        Raises:
            ToolFailure: it is required and missing, or not strings.
        """
        value = self._values.get(name)
        if value is None:
            if required:
                raise ToolFailure(f"`{name}` is required for action={self.action}.")
            return []
        items = value if isinstance(value, list) else [value]
        result: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise ToolFailure(f"`{name}` must be a list of strings.")
            result.extend(part for part in item.replace(",", " ").split() if part)
        if required and not result:
            raise ToolFailure(f"`{name}` is required for action={self.action}.")
        return result


def required_action(tool: str, values: Mapping[str, Any], actions: tuple[str, ...]) -> str:
    """Return the ``action`` argument of an action-based tool, which must be one of ``actions``.

    Raises:
        ToolFailure: it is missing or not one of them.
    """
    action = Arguments(tool, values).choice("action", actions)
    if action is None:
        raise ToolFailure(f"`action` is required: one of {', '.join(actions)}.")
    return action
