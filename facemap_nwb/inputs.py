"""Reading the files a user writes (parameters and ROIs, metadata, session specs): bounded, strict, one error path.

Every such file goes through :func:`read_user_file`, then through one declared schema
(:mod:`facemap_nwb.models`) with :func:`validate`. Both raise :class:`InputError`, whose message names
the file, the key, the value and the fix. Nothing here can be made to run long or eat memory by a
small file:

* a size limit per kind of file (:data:`MAX_BYTES`), checked before the file is read, and reading
  never takes more than that limit plus one byte (a FIFO or ``/dev/zero`` named as a file is refused);
* text must be UTF-8 (a UTF-8 byte-order mark is allowed); UTF-16/32 files and invalid bytes are named;
* YAML is read by the safe loader, after a first pass over libyaml's events that counts the document's
  values *as if its aliases were expanded* before any Python object is built: a "billion laughs" alias
  bomb of a few hundred bytes, or a file of millions of values, is refused at once (:data:`MAX_NODES`),
  as are self-referencing anchors and nesting deeper than :data:`MAX_DEPTH`. Aliases themselves are
  fine (``&defaults`` / ``<<: *defaults``).
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
from pathlib import Path

__all__ = ["InputError", "read_user_file", "validate", "format_value", "MAX_BYTES", "MAX_NODES", "MAX_DEPTH"]

# Largest file of each kind. A parameter file with a 500 x 500 ellipse mask written out as lists of
# true/false is about 1.5 MB; anything much larger is not a parameter file.
MAX_BYTES = {
    "parameter file": 4 * 2**20,
    "ROI file": 4 * 2**20,
    "metadata file": 2**20,
    "session spec": 2**20,
}
# Nodes of a YAML document once its aliases are expanded (a scalar, list or mapping counts one each).
# Building Python objects from YAML takes about 10 us a value: 250,000 values (a 500 x 500 ellipse mask
# written as lists of true/false) load in about 2.5 s.
MAX_NODES = 250_000
MAX_DEPTH = 64


class InputError(ValueError):
    """A file the user wrote cannot be used; the message names the file, the key, the value and the fix."""


def format_value(value, limit: int = 60) -> str:
    """A short ``repr`` of a value for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_bounded(path: Path, what: str, max_bytes: int) -> bytes:
    if not path.exists():
        if path.is_symlink():
            raise InputError(f"{what.capitalize()} '{path}' is a broken link. Fix the link or the path.")
        raise FileNotFoundError(f"{what.capitalize()} '{path}' not found. Check the path.")
    if path.is_dir():
        raise InputError(f"{what.capitalize()} '{path}' is a folder, not a file. Name the file itself.")
    if not path.is_file():
        raise InputError(f"{what.capitalize()} '{path}' is not a regular file (a device or pipe?). Name a file.")
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(
            f"{what.capitalize()} '{path}' is {size:,} bytes; a {what} is at most {max_bytes:,} bytes. "
            "Check that this is the right file."
        )
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while we looked
        raise InputError(f"{what.capitalize()} '{path}' is larger than {max_bytes:,} bytes. Check the file.")
    return data


_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _decode(data: bytes, path: Path, what: str) -> str:
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise InputError(
                f"{what.capitalize()} '{path}' is saved as {name} text; facemap-nwb reads UTF-8. "
                "Save it again as UTF-8 (in most editors: Save As, encoding UTF-8)."
            )
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{what.capitalize()} '{path}': byte {err.start} (line {line}) is not valid UTF-8 "
            f"(0x{data[err.start]:02x}). Save the file as UTF-8 text."
        ) from None
    if "\x00" in text:
        raise InputError(
            f"{what.capitalize()} '{path}' holds NUL characters: it is binary, or UTF-16 text without a byte-order "
            "mark. Save it as UTF-8 text."
        )
    return text


def _check_events(text: str, path: Path, what: str) -> None:
    """Walk the parser's events (fast, in libyaml) and refuse, before any node is built, a document whose
    size once its aliases are expanded exceeds :data:`MAX_NODES`, an anchor that refers to itself, or
    nesting deeper than :data:`MAX_DEPTH`. Building nodes costs about 100 times more than reading events,
    so this bounds the time and memory of the load that follows."""
    import yaml

    title = what.capitalize()
    sizes: dict[str, int] = {}
    stack: list[list] = []  # [anchor, expanded size so far] of each open sequence or mapping
    expanded = 0
    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if isinstance(event, yaml.AliasEvent):
            if any(frame[0] == event.anchor for frame in stack):
                raise InputError(
                    f"{title} '{path}': the alias *{event.anchor} at line {event.start_mark.line + 1} refers to its "
                    "own anchor. Remove it."
                )
            size = sizes.get(event.anchor, 1)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_DEPTH:
                raise InputError(
                    f"{title} '{path}' nests deeper than {MAX_DEPTH} levels (line {event.start_mark.line + 1}). "
                    "Flatten it: no facemap-nwb file needs that depth."
                )
            expanded += 1
            continue
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, size = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
            if stack:
                stack[-1][1] += size
            continue
        elif isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        else:
            continue
        expanded += size
        if stack:
            stack[-1][1] += size
        if expanded > MAX_NODES:
            raise InputError(
                f"{title} '{path}' holds more than {MAX_NODES:,} values (counting each YAML alias as what it "
                "repeats): an alias bomb, or not a facemap-nwb file. Write large masks as {shape, packed_bits}."
            )


def _parse_yaml(text: str, path: Path, what: str):
    import yaml

    try:
        _check_events(text, path, what)
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(
            f"{what.capitalize()} '{path}' does not parse as YAML/JSON{where}: {problem}. Fix its syntax."
        ) from None
    except RecursionError:
        raise InputError(f"{what.capitalize()} '{path}' nests too deeply. Flatten it.") from None


def read_user_file(path: str | os.PathLike, what: str):
    """Parse a YAML or JSON file the user wrote, within the limits of its kind (see the module doc).

    Parameters
    ----------
    path : path
        The file.
    what : str
        Its kind, a key of :data:`MAX_BYTES` (``"parameter file"``, ``"metadata file"``, ...).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    InputError
        Too large, not UTF-8, not YAML, an alias bomb, nested too deeply.
    """
    path = Path(path)
    data = _read_bounded(path, what, MAX_BYTES[what])
    return _parse_yaml(_decode(data, path, what), path, what)


# ------------------------------------------------------------------------------------------ schema errors


def _unwrap(annotation):
    """The model class inside ``Model``, ``Model | None``, ``list[Model]``, ``dict[str, Model]`` (else None)."""
    import typing

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap(arg)
        if found is not None:
            return found
    return None


def _model_at(model, loc: tuple):
    """The model class that the location ``loc`` points into (None past a plain value)."""
    current = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part) if current is not None else None
        current = _unwrap(info.annotation) if info is not None else None
    return current


def _field_at(model, loc: tuple):
    """The field info of the last key of ``loc`` (None when there is none)."""
    keys = [i for i, part in enumerate(loc) if isinstance(part, str)]
    if not keys:
        return None
    holder = _model_at(model, loc[: keys[-1]])
    return holder.model_fields.get(loc[keys[-1]]) if holder is not None else None


def _clean(model, error: dict) -> tuple:
    """The user's keys in a pydantic error location: the labels pydantic adds for union branches and
    validators are left out by walking the model (a part is a key when the model there has that field)."""
    out, current = [], model
    loc = error["loc"]
    for index, part in enumerate(loc):
        if isinstance(part, int):
            out.append(part)
        elif current is not None and part in current.model_fields:
            out.append(part)
            current = _unwrap(current.model_fields[part].annotation)
        elif index == len(loc) - 1 and error["type"] == "extra_forbidden":
            out.append(part)
    return tuple(out)


def _message(model, error: dict) -> str:
    loc = _clean(model, error)
    key = ".".join(str(p) for p in loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        holder = _model_at(model, loc[:-1])
        allowed = sorted(holder.model_fields) if holder is not None else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"Did you mean '{close[0]}'? " if close else ""
        return f"{key}: unknown key. {hint}Allowed keys here: {', '.join(allowed)}."
    info = _field_at(model, loc)
    described = info is not None and info.description
    if kind == "missing":
        return f"{key}: missing{f' ({info.description})' if described else ''}. Add it."
    problem = re.sub(r"valid dictionary or instance of \w+", "mapping of keys", error["msg"])
    problem = problem.removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, (dict, list)) and kind in ("model_type", "dict_type", "list_type"):
        problem += f" (got a {'list' if isinstance(value, list) else 'mapping'})"
    elif not (isinstance(value, dict) and kind == "value_error"):  # a model-level check says it in its own words
        problem += f" (got {format_value(value)})"
    if kind == "value_error" or (loc and isinstance(loc[-1], int)):
        return f"{key}: {problem}."
    if not loc:
        doc = (model.__doc__ or "").strip().splitlines()
        return f"{key}: {problem}. Expected: {doc[0].rstrip('.') if doc else 'a mapping of keys'}."
    return f"{key}: {problem}.{f' Expected: {info.description}.' if described else ''}"


def validate(model, data, *, source: str, error=InputError):
    """Validate ``data`` against the pydantic ``model``; the first problem becomes one ``error`` naming
    ``source`` (e.g. ``"Parameter file 'p.yaml'"``), the key, the value and the fix."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as err:
        # An unknown key (a typo) explains the "missing" error of the key it misspells; of a union's
        # branches, the error that got furthest into the value says most.
        errors = err.errors(include_url=False)
        first = max(errors, key=lambda e: (e["type"] == "extra_forbidden", len(_clean(model, e))))
        raise error(f"{source}: {_message(model, first)}") from None
