"""Ranked groups: a page of the largest groups, with totals over every group before the limit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class Ranked:
    """A page of groups and the totals over every group (before the limit)."""

    rows: list[Any]
    total_groups: int
    total_count: int
    total_amount: Decimal = Decimal(0)


def totals(count: Any, *amounts: Any) -> list[Any]:
    """Window columns that `ranked` reads: groups, their summed counts and summed amounts."""
    return [func.count().over(), func.sum(count).over(), *(func.sum(a).over() for a in amounts)]


async def ranked(
    conn: AsyncConnection,
    query: Select[Any],
    parameters: dict[str, Any],
    width: int,
    row: Callable[..., Any],
) -> Ranked:
    """`query`'s rows as `row(*their first width columns)`, with the `totals` put after."""
    result = (await conn.execute(query, parameters)).all()
    if not result:
        return Ranked([], 0, 0)
    sums = result[0][width:]
    amount = Decimal(sums[2]) if len(sums) > 2 else Decimal(0)
    rows = [row(*values[:width]) for values in result]
    return Ranked(rows, int(sums[0]), int(sums[1]), amount)
