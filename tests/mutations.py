"""Random damage to a file's bytes, for hypothesis property tests of the loaders."""

from __future__ import annotations

__all__ = ["mutate_bytes"]


def mutate_bytes(draw, base: bytes, positions: list[int] | None = None) -> bytes:
    """``base`` with 1 to 4 random flips, overwrites, insertions, deletions or a truncation (``draw`` is
    hypothesis's, inside an ``st.composite``). With ``positions`` (e.g. where pickle opcodes start), half of
    the damage lands within 10 bytes after one of them."""
    from hypothesis import strategies as st

    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if positions is not None and draw(st.booleans()):
            position = min(draw(st.sampled_from(positions)) + draw(st.integers(0, 9)), len(data) - 1)
        else:
            position = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 8))]
        else:
            del data[position:]
        if not data:
            break
    return bytes(data)
