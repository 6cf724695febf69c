"""``tf.flags`` / ``tf.app.flags``: TF1's absl-style command-line flags.

``DEFINE_string/integer/float/boolean/enum/list`` register a flag (name, default, help) on
``FLAGS``; ``FLAGS(argv)`` parses ``--name=value``, ``--name value``, ``--bool`` /
``--nobool`` (and ``--bool=false``), stops at ``--``, and returns ``argv[0]`` plus what it did
not consume. Reading a flag before parsing raises ``UnparsedFlagAccessError``, an unknown
flag ``UnrecognizedFlagError`` (unless ``known_only``), a bad value
``IllegalFlagValueError`` naming the flag and the value; defaults are checked when defined.
``tf.app.run`` parses with ``known_only=True``, as TF1 does.

>>> fv = FlagValues()
>>> DEFINE_integer("steps", 10, "training steps", lower_bound=1, flag_values=fv)
>>> DEFINE_boolean("fake_data", False, "use fake data", flag_values=fv)
>>> fv(["prog", "--steps=3", "--fake_data", "rest"])
['prog', 'rest']
>>> fv.steps, fv.fake_data
(3, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Error", "UnrecognizedFlagError", "IllegalFlagValueError", "DuplicateFlagError",
           "UnparsedFlagAccessError", "FlagValues", "FLAGS", "DEFINE_string",
           "DEFINE_integer", "DEFINE_float", "DEFINE_boolean", "DEFINE_bool", "DEFINE_enum",
           "DEFINE_list", "mark_flag_as_required"]


class Error(Exception):
    """Base of the flag errors."""


class UnrecognizedFlagError(Error):
    """A command-line flag nobody defined."""


class IllegalFlagValueError(Error):
    """A flag value its parser or bounds reject."""


class DuplicateFlagError(Error):
    """A flag name defined twice from different files."""


class UnparsedFlagAccessError(Error, AttributeError):
    """A flag read before ``FLAGS(argv)`` (or ``app.run``) parsed the command line."""


_TRUE, _FALSE = ("true", "t", "1", "yes", "y"), ("false", "f", "0", "no", "n")


def _parse_bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    s = str(text).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"Non-boolean argument to boolean flag: {text!r}")


@dataclass
class _Flag:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any]
    kind: str
    module: str
    value: Any = None
    present: int = 0
    required: bool = False

    def set(self, raw: Any) -> None:
        try:
            self.value = None if raw is None else self.parse(raw)
        except (ValueError, TypeError) as e:
            raise IllegalFlagValueError(f"flag --{self.name}={raw}: {e}") from None


class FlagValues:
    """A registry of flags and their values (``FLAGS`` is the global one)."""

    def __init__(self) -> None:
        object.__setattr__(self, "_flags", {})
        object.__setattr__(self, "_parsed", False)

    # -- definition ----------------------------------------------------------------------------
    def _define(self, flag: _Flag) -> None:
        old = self._flags.get(flag.name)
        if old is not None and old.module != flag.module:
            raise DuplicateFlagError(f"The flag '{flag.name}' is defined twice. First from "
                                     f"{old.module}, Second from {flag.module}.")
        flag.set(flag.default)
        self._flags[flag.name] = flag

    def __contains__(self, name: str) -> bool:
        return name in self._flags

    def __iter__(self) -> Iterator[str]:
        return iter(self._flags)

    # -- values --------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        flags = object.__getattribute__(self, "_flags")
        if name not in flags:
            raise AttributeError(name)
        if not object.__getattribute__(self, "_parsed"):
            raise UnparsedFlagAccessError(
                f"Trying to access flag --{name} before flags were parsed.")
        return flags[name].value

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._flags:
            raise AttributeError(f"No flag named {name!r}; define it with DEFINE_*")
        self._flags[name].set(value)

    def __getitem__(self, name: str) -> _Flag:
        return self._flags[name]

    def is_parsed(self) -> bool:
        return self._parsed

    def mark_as_parsed(self) -> None:
        object.__setattr__(self, "_parsed", True)

    def unparse_flags(self) -> None:
        """Back to defaults, unparsed."""
        for f in self._flags.values():
            f.set(f.default)
            f.present = 0
        object.__setattr__(self, "_parsed", False)

    def flag_values_dict(self) -> dict[str, Any]:
        return {n: f.value for n, f in self._flags.items()}

    def get_flag_value(self, name: str, default: Any) -> Any:
        return self._flags[name].value if name in self._flags else default

    # -- parsing -------------------------------------------------------------------------------
    def __call__(self, argv: Sequence[str], known_only: bool = False) -> list[str]:
        """Parse ``argv`` (``argv[0]`` is the program); return it with the unparsed rest."""
        if isinstance(argv, str):
            raise TypeError("argv should be a tuple/list of strings, not bytes or string.")
        if not argv:
            raise ValueError("argv cannot be an empty list, and must contain the program "
                             "name as the first element.")
        rest: list[str] = [argv[0]]
        args = list(argv[1:])
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                rest += args[i:]
                break
            if not arg.startswith("-") or arg == "-":
                rest.append(arg)
                continue
            name, eq, value = arg.lstrip("-").partition("=")
            flag = self._flags.get(name)
            if flag is None and name.startswith("no") and not eq:
                negated = self._flags.get(name[2:])
                if negated is not None and negated.kind == "bool":
                    negated.set(False)
                    negated.present += 1
                    continue
            if flag is None:
                if known_only:
                    rest.append(arg)
                    continue
                raise UnrecognizedFlagError(f"Unknown command line flag '{name}'")
            if not eq:
                if flag.kind == "bool":
                    value = "true"
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise IllegalFlagValueError(f"Missing value for flag {arg}")
            flag.set(value)
            flag.present += 1
        missing = [n for n, f in self._flags.items() if f.required and f.value is None]
        if missing:
            raise IllegalFlagValueError(f"flag --{missing[0]}=None: Flag --{missing[0]} must "
                                        "have a value other than None.")
        self.mark_as_parsed()
        return rest

    def help_text(self) -> str:
        """One line per flag: name, help and default."""
        return "\n".join(f"  --{n}: {f.help}\n    (default: '{f.default}')"
                         for n, f in sorted(self._flags.items()))


FLAGS = FlagValues()


def _caller_module() -> str:
    import sys
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals.get("__file__", "<unknown>") if frame else "<unknown>"


def _bounded(parse: Callable[[Any], Any], lower: Any, upper: Any) -> Callable[[Any], Any]:
    def check(raw: Any) -> Any:
        v = parse(raw)
        if lower is not None and v < lower:
            raise ValueError(f"{v} is not >= {lower}")
        if upper is not None and v > upper:
            raise ValueError(f"{v} is not <= {upper}")
        return v
    return check


def _define(kind: str, parse: Callable[[Any], Any], name: str, default: Any, help: str,
            flag_values: FlagValues | None) -> None:
    (flag_values if flag_values is not None else FLAGS)._define(
        _Flag(name, default, help, parse, kind, _caller_module()))


def _parse_int(raw: Any) -> int:
    if isinstance(raw, float) and not raw.is_integer():
        raise ValueError(f"Expect argument to be an int, found {raw!r}")
    return int(raw) if not isinstance(raw, str) else int(raw, 0)


def DEFINE_string(name: str, default: str | None, help: str,
                  flag_values: FlagValues | None = None, **args: Any) -> None:
    """A string flag: ``DEFINE_string("data_dir", "/tmp/data", "where the data is")``."""
    _define("string", str, name, default, help, flag_values)


def DEFINE_integer(name: str, default: int | None, help: str, lower_bound: int | None = None,
                   upper_bound: int | None = None, flag_values: FlagValues | None = None,
                   **args: Any) -> None:
    """An integer flag (decimal, or ``0x``/``0o`` prefixed), optionally bounded."""
    _define("int", _bounded(_parse_int, lower_bound, upper_bound), name, default, help,
            flag_values)


def DEFINE_float(name: str, default: float | None, help: str,
                 lower_bound: float | None = None, upper_bound: float | None = None,
                 flag_values: FlagValues | None = None, **args: Any) -> None:
    """A float flag, optionally bounded: ``DEFINE_float("learning_rate", 0.01, "...")``."""
    _define("float", _bounded(float, lower_bound, upper_bound), name, default, help,
            flag_values)


def DEFINE_boolean(name: str, default: bool | None, help: str,
                   flag_values: FlagValues | None = None, **args: Any) -> None:
    """A boolean flag: ``--name``, ``--noname``, ``--name=false``."""
    _define("bool", _parse_bool, name, default, help, flag_values)


DEFINE_bool = DEFINE_boolean


def DEFINE_enum(name: str, default: str | None, enum_values: Sequence[str], help: str,
                flag_values: FlagValues | None = None, **args: Any) -> None:
    """A string flag restricted to ``enum_values``."""
    allowed = list(enum_values)

    def parse(raw: Any) -> str:
        if raw not in allowed:
            raise ValueError(f"value should be one of <{'|'.join(allowed)}>")
        return raw
    _define("enum", parse, name, default, help, flag_values)


def DEFINE_list(name: str, default: Any, help: str, flag_values: FlagValues | None = None,
                **args: Any) -> None:
    """A comma-separated list of strings."""
    def parse(raw: Any) -> list[str]:
        if isinstance(raw, (list, tuple)):
            return [str(x) for x in raw]
        return [s.strip() for s in str(raw).split(",") if s.strip()]
    _define("list", parse, name, default, help, flag_values)


def mark_flag_as_required(name: str, flag_values: FlagValues | None = None) -> None:
    """Parsing fails unless the flag gets a value other than None."""
    (flag_values if flag_values is not None else FLAGS)[name].required = True
