"""The search for a message PostgreSQL refuses (`workers.refusals.RefusalSearch`)."""

from __future__ import annotations

from workers.refusals import RefusalSearch


def sources(*offsets: int) -> list[tuple[str, int, int]]:
    return [("failures", 0, offset) for offset in offsets]


def test_a_refused_batch_halves_until_one_message_is_left_then_refuses_it() -> None:
    search = RefusalSearch()
    search.refusal(sources(*range(8)), "check constraint")
    assert search.limit == 4
    search.committed(sources(0, 1, 2, 3))
    search.refusal(sources(4, 5, 6, 7), "check constraint")
    assert search.limit == 2
    search.refusal(sources(4, 5), "check constraint")
    assert search.limit == 1
    search.committed(sources(4))
    search.refusal(sources(5), 'new row violates check constraint "c"')
    assert search.limit is None  # found: batches go back to their full size
    assert search.refused == {("failures", 0, 5): 'new row violates check constraint "c"'}
    assert search.busy
    search.committed(sources(5, 6, 7))
    assert not search.busy


def test_the_search_ends_when_the_refused_window_is_written() -> None:
    search = RefusalSearch()
    search.refusal(sources(*range(5)), "numeric field overflow")
    assert search.limit == 3
    search.committed(sources(0, 1, 2))
    assert search.limit == 3
    search.committed(sources(3, 4))  # the refusal did not come back (it was not the data)
    assert search.limit is None and not search.busy


def test_a_refusal_of_messages_already_refused_is_not_their_data() -> None:
    search = RefusalSearch()
    search.refusal(sources(3), "value too long")
    assert search.knows(sources(3))
    assert not search.knows(sources(3, 4))


def test_a_refusal_detail_is_printable_and_bounded() -> None:
    search = RefusalSearch()
    search.refusal(sources(1), "bad\x00byte " + "x" * 5000)
    (detail,) = search.refused.values()
    assert "\x00" not in detail and len(detail.encode()) <= 2000
