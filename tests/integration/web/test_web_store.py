"""The dashboard's repositories on SQLite and PostgreSQL: users, sessions, attempts, jobs,
the journal's search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from marketbot.store.database import Database
from marketbot.store.jobs import JobRepository
from marketbot.store.web_auth import WebAuthRepository, session_digest
from marketbot.store.web_journal import JournalFilter, JournalRepository, draft_journal_entry

WINDOW = timedelta(minutes=15)


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 12, 5, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


def test_sessions_when_stored_keep_the_digest_and_expire_when_idle(database: Database) -> None:
    clock = Clock()
    auth = WebAuthRepository(database, clock=clock)
    user = auth.set_admin("ops", "hash-1")
    cookie, info = auth.open_session(user.id)

    assert info.id_sha256 == session_digest(cookie)
    assert auth.live_session(cookie, idle=timedelta(hours=12), touch_after=timedelta(0)) is not None
    clock.moment += timedelta(hours=12, seconds=1)
    assert auth.live_session(cookie, idle=timedelta(hours=12), touch_after=timedelta(0)) is None
    assert auth.session_count() == 0


def test_login_limit_when_five_failures_locks_until_the_oldest_leaves_the_window(
    database: Database,
) -> None:
    clock = Clock()
    auth = WebAuthRepository(database, clock=clock)
    for _ in range(5):
        clock.moment += timedelta(minutes=1)
        assert auth.locked_for("ops", "10.0.0.1", limit=5, window=WINDOW) == 0
        auth.record_failure("ops", "10.0.0.1")

    assert auth.locked_for("ops", "10.0.0.9", limit=5, window=WINDOW) == 11 * 60
    assert auth.locked_for("other", "10.0.0.1", limit=5, window=WINDOW) == 11 * 60
    clock.moment += timedelta(minutes=11, seconds=1)
    assert auth.locked_for("ops", "10.0.0.1", limit=5, window=WINDOW) == 0


def test_set_admin_when_another_name_replaces_the_single_admin(database: Database) -> None:
    auth = WebAuthRepository(database)
    first = auth.set_admin("ops", "hash-1")
    auth.open_session(first.id)

    second = auth.set_admin("root", "hash-2")

    assert auth.user_count() == 1
    assert auth.user("ops") is None
    assert auth.user("root") == second
    assert auth.session_count() == 0
    assert auth.create_first_admin("late", "hash-3") is None


def test_jobs_when_claimed_run_in_id_order(database: Database) -> None:
    jobs = JobRepository(database)
    ids = [jobs.queue("backtest", {"n": n}, by="ops").id for n in range(3)]

    claimed = [jobs.claim_next() for _ in range(4)]

    assert [job.id for job in claimed if job is not None] == ids
    assert claimed[3] is None
    jobs.finish(ids[0], {"run_id": 7})
    assert jobs.get(ids[0]).result == {"run_id": 7}
    assert jobs.fail_started() == 2


def test_journal_search_when_text_has_like_wildcards_matches_them_literally(
    database: Database,
) -> None:
    journal = JournalRepository(database)
    journal.save(None, {"symbol": "bitcoin", "lessons": "took 100% of the move"})
    journal.save(None, {"symbol": "ethereum", "lessons": "took 1000 of the move"})
    draft_journal_entry(database, trade_id=3, symbol="BTC/USDT", strategy="x", entry_tag="tag")

    percent, total = journal.list_entries(JournalFilter(search="100%"))
    underscore, _ = journal.list_entries(JournalFilter(search="_"))
    by_case, _ = journal.list_entries(JournalFilter(search="BITCOIN"))

    assert [entry.symbol for entry in percent] == ["bitcoin"]
    assert total == 1
    assert [entry.symbol for entry in underscore] == []
    assert [entry.symbol for entry in by_case] == ["bitcoin"]
