"""Sets of batch numbers as compact ranges ("0-99,120-130"): a plan may have 100,000 batches and
its status must stay small."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def parse(text: str | None) -> list[tuple[int, int]]:
    """Inclusive (first, last) pairs, in the order written."""
    ranges: list[tuple[int, int]] = []
    for part in (text or "").split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        ranges.append((int(first), int(last or first)))
    return ranges


def render(numbers: Iterable[int]) -> str:
    """The compact form of a set of non-negative integers, ascending."""
    ordered = sorted(set(numbers))
    parts: list[str] = []
    index = 0
    while index < len(ordered):
        first = last = ordered[index]
        while index + 1 < len(ordered) and ordered[index + 1] == last + 1:
            index += 1
            last = ordered[index]
        parts.append(str(first) if first == last else f"{first}-{last}")
        index += 1
    return ",".join(parts)


def members(text: str | None) -> Iterator[int]:
    for first, last in parse(text):
        yield from range(first, last + 1)


def contains(text: str | None, number: int) -> bool:
    return any(first <= number <= last for first, last in parse(text))


def count(text: str | None) -> int:
    return sum(last - first + 1 for first, last in parse(text))


def add(text: str | None, numbers: Iterable[int]) -> str:
    """`text` with `numbers` added, merged into the fewest ranges."""
    merged = sorted([*parse(text), *((n, n) for n in numbers)])
    out: list[tuple[int, int]] = []
    for first, last in merged:
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in out)


def lowest_missing(
    texts: Iterable[str | None], total: int, also_taken: Iterable[int], wanted: int
) -> list[int]:
    """Up to ``wanted`` of the numbers 0..total-1, lowest first, that are in none of ``texts`` nor
    in ``also_taken``: found by walking the gaps between the ranges, so its cost does not grow with
    how many numbers the ranges hold (a plan 99,000 batches into 100,000)."""
    if wanted <= 0:
        return []
    taken = set(also_taken)
    chosen: list[int] = []
    cursor = 0
    for first, last in sorted([*(r for text in texts for r in parse(text)), (total, total)]):
        for number in range(cursor, min(first, total)):
            if number not in taken:
                chosen.append(number)
                if len(chosen) == wanted:
                    return chosen
        cursor = max(cursor, last + 1)
        if cursor >= total:
            break
    return chosen
