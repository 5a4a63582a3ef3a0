"""The bot's records (migration 0005) and their repositories, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from marketbot.core.errors import ConfigError, DataError
from marketbot.risk.circuit_breaker import CircuitBreaker, OverrideMode, TripKind
from marketbot.store import Base, Database
from marketbot.store.bot import (
    BotCommandRepository,
    BotRecordRepository,
    BotRunRepository,
    BotRunSpec,
    OrderIntent,
    OrderRepository,
    OrderUpdate,
    TradeRecord,
    VerificationRecord,
    config_hash,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BOT_TABLES = (
    "bot_runs",
    "orders",
    "order_events",
    "trades",
    "verifications",
    "risk_events",
    "bot_commands",
)
SPEC = BotRunSpec(
    strategy="sma_crossover",
    symbol="BTC/USDT",
    timeframe="1h",
    source="binance",
    mode="paper",
    params={"fast": 10, "slow": 30},
    config={"fee": 0.002, "risk": {"max_position_usd": 1000.0}},
)


def ticking_clock() -> Callable[[], datetime]:
    """A clock one second later at each call, from T0."""
    ticks = iter(range(10_000))
    return lambda: T0 + timedelta(seconds=next(ticks))


def count_rows(database: Database, table: str) -> int:
    with database.engine.connect() as connection:
        return int(connection.scalar(sa.select(sa.func.count()).select_from(sa.table(table))))


def intent(run_id: int, client_order_id: str = "mb-1", **changes: object) -> OrderIntent:
    values: dict[str, object] = {
        "client_order_id": client_order_id,
        "bot_run_id": run_id,
        "strategy": "sma_crossover",
        "symbol": "BTC/USDT",
        "intent": "entry",
        "side": "buy",
        "order_type": "market",
        "cost": 500.0,
        "bar_time": T0 - timedelta(hours=1),
    }
    return OrderIntent(**(values | changes))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- migration


def test_migrate_when_upgrading_from_0004_keeps_rows_and_adds_the_bot_tables(
    empty_database: Database,
) -> None:
    empty_database.migrate("0004")
    configs = sa.table(
        "position_configs",
        sa.column("position_key"),
        sa.column("stop_loss"),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    with empty_database.engine.begin() as connection:
        connection.execute(
            sa.insert(configs).values(position_key="btc-1", stop_loss=0.02, updated_at=T0)
        )

    empty_database.migrate()

    tables = set(sa.inspect(empty_database.engine).get_table_names())
    assert set(BOT_TABLES) <= tables
    with empty_database.engine.connect() as connection:
        kept = connection.execute(sa.select(configs.c.position_key, configs.c.stop_loss)).all()
    assert [tuple(row) for row in kept] == [("btc-1", 0.02)]
    command = BotCommandRepository(empty_database).queue("stop", by="ops", reason="upgrade")
    assert command.status == "pending"


def test_migrate_when_downgraded_to_0004_drops_only_the_bot_tables(database: Database) -> None:
    from alembic import command

    from marketbot.store.database import alembic_config

    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0006")  # the last bot revision
    before = set(sa.inspect(database.engine).get_table_names())
    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0004")

    assert set(sa.inspect(database.engine).get_table_names()) == before - set(BOT_TABLES)


def test_bot_models_when_listed_are_the_migrated_tables() -> None:
    assert set(BOT_TABLES) <= set(Base.metadata.tables)


# ---------------------------------------------------------------------------- runs


def test_start_run_when_none_is_current_stores_it_with_a_random_run_id(
    database: Database,
) -> None:
    runs = BotRunRepository(database, clock=ticking_clock())

    run = runs.start_run(SPEC)

    assert runs.current_run() == run
    assert len(run.run_id) == 16 and int(run.run_id, 16) >= 0
    assert (run.strategy, run.mode, run.params, run.config) == (
        "sma_crossover",
        "paper",
        {"fast": 10, "slow": 30},
        {"fee": 0.002, "risk": {"max_position_usd": 1000.0}},
    )
    assert (run.start, run.end, run.archived_at, run.last_bar_time) == (T0, None, None, None)
    assert run.config_hash == config_hash({"risk": {"max_position_usd": 1000.0}, "fee": 0.002})


def test_start_run_when_same_strategy_and_symbol_is_current_is_refused(
    database: Database,
) -> None:
    runs = BotRunRepository(database)
    first = runs.start_run(SPEC)

    with pytest.raises(ConfigError, match=rf"bot run {first.id} .* is still current"):
        runs.start_run(SPEC)
    assert count_rows(database, "bot_runs") == 1


def test_start_run_when_another_strategy_runs_keeps_both_current(database: Database) -> None:
    runs = BotRunRepository(database)
    first = runs.start_run(SPEC)
    second = runs.start_run(replace(SPEC, strategy="momentum", symbol="ETH/USDT"))

    assert runs.current_runs() == [first, second]
    assert runs.current_run("sma_crossover", "BTC/USDT") == first
    assert runs.current_run(symbol="ETH/USDT") == second
    assert runs.current_run() == second  # the newest


def test_archive_when_run_is_current_ends_it_and_frees_the_slot(database: Database) -> None:
    runs = BotRunRepository(database, clock=ticking_clock())
    first = runs.start_run(SPEC)

    archived = runs.archive(first.id)

    assert archived.archived_at == archived.end == T0 + timedelta(seconds=1)
    assert runs.current_run() is None
    with pytest.raises(DataError, match="archived already"):
        runs.archive(first.id)
    second = runs.start_run(SPEC)
    assert second.run_id != first.run_id and runs.current_run() == second


def test_set_last_bar_time_when_going_back_is_refused(database: Database) -> None:
    runs = BotRunRepository(database)
    run = runs.start_run(SPEC)
    assert runs.set_last_bar_time(run.id, T0).last_bar_time == T0

    with pytest.raises(DataError, match="is before the stored"):
        runs.set_last_bar_time(run.id, T0 - timedelta(hours=1))
    assert runs.get(run.id).last_bar_time == T0


def test_start_run_when_mode_unknown_is_refused(database: Database) -> None:
    with pytest.raises(DataError, match="mode 'demo': use one of paper, live"):
        BotRunRepository(database).start_run(
            BotRunSpec(strategy="s", symbol="x", timeframe="1h", source="s", mode="demo")
        )


# ---------------------------------------------------------------------------- orders


def test_insert_intent_when_new_stores_an_unsent_intent(database: Database) -> None:
    run = BotRunRepository(database).start_run(SPEC)
    orders = OrderRepository(database, clock=ticking_clock())

    first = orders.insert_intent(intent(run.id, "mb-1"))
    stop = intent(run.id, "mb-2", intent="protect", order_type="stop", side="sell", cost=None,
                  amount=0.01, stop_price=90.0)  # fmt: skip
    second = orders.insert_intent(stop)

    assert (first.status, first.sent_at, first.filled, first.fee) == ("intent", None, 0.0, 0.0)
    assert (first.attempt, first.cost, first.amount) == (0, 500.0, None)
    assert (second.order_type, second.stop_price, second.amount) == ("stop", 90.0, 0.01)
    assert orders.get("mb-2") == second
    assert first.bar_time == T0 - timedelta(hours=1) and first.created_at == T0
    assert [order.client_order_id for order in orders.unsent(run.id)] == [
        first.client_order_id,
        second.client_order_id,
    ]


def test_insert_intent_when_client_order_id_is_taken_refuses_and_stores_nothing(
    database: Database,
) -> None:
    run = BotRunRepository(database).start_run(SPEC)
    orders = OrderRepository(database)
    orders.insert_intent(intent(run.id, "mb-x-1"))

    with pytest.raises(DataError, match=r"order mb-x-1 is already stored: client order ids are"):
        orders.insert_intent(intent(run.id, "mb-x-1", side="sell", amount=1.0))

    assert count_rows(database, "orders") == 1
    assert orders.get("mb-x-1").side == "buy"


def test_orders_table_when_client_order_id_repeats_refuses_it(database: Database) -> None:
    # The database itself guards uniqueness, whatever the repository checks first.
    run = BotRunRepository(database).start_run(SPEC)
    OrderRepository(database).insert_intent(intent(run.id, "dup"))
    table = Base.metadata.tables["orders"]
    row = {
        "client_order_id": "dup", "bot_run_id": run.id, "strategy": "s", "symbol": "x",
        "intent": "entry", "side": "buy", "type": "market", "amount": 1.0, "status": "intent",
        "filled": 0.0, "fee": 0.0, "attempt": 1, "created_at": T0, "updated_at": T0,
    }  # fmt: skip

    with pytest.raises(sa.exc.IntegrityError), database.engine.begin() as connection:
        connection.execute(sa.insert(table).values(**row))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"intent": "buy"}, "order intent 'buy': use one of entry, exit, protect"),
        ({"side": "long"}, "order side 'long'"),
        ({"order_type": "iceberg"}, "order type 'iceberg'"),
        ({"cost": None}, "needs an amount .* or a cost"),
        ({"price": float("nan")}, "price=nan: must be a finite number above 0"),
        ({"amount": -1.0}, "amount=-1.0: must be a finite number above 0"),
        ({"attempt": -1}, "attempt=-1: must be 0 or more"),
        ({"client_order_id": " "}, "client order id must not be empty"),
        ({"bot_run_id": 999}, "no bot run with id 999"),
    ],
)
def test_insert_intent_when_invalid_is_refused(
    database: Database, changes: dict[str, object], message: str
) -> None:
    run = BotRunRepository(database).start_run(SPEC)
    with pytest.raises(DataError, match=message):
        OrderRepository(database).insert_intent(intent(run.id, **changes))
    assert count_rows(database, "orders") == 0


def test_mark_sent_when_intent_stored_sets_sent_at_and_opens_it(database: Database) -> None:
    run = BotRunRepository(database).start_run(SPEC)
    orders = OrderRepository(database, clock=ticking_clock())
    order = orders.insert_intent(intent(run.id))

    sent = orders.mark_sent(order.client_order_id, exchange_order_id="ex-42")

    assert (sent.status, sent.sent_at, sent.exchange_order_id) == (
        "open",
        T0 + timedelta(seconds=1),
        "ex-42",
    )
    assert orders.unsent(run.id) == []
    assert [(e.kind, e.details) for e in orders.events(order.client_order_id)] == [
        ("order_submitted", {})
    ]
    with pytest.raises(DataError, match="marked sent already"):
        orders.mark_sent(order.client_order_id)


def test_apply_update_when_events_arrive_out_of_order_keeps_the_final_status(
    database: Database,
) -> None:
    run = BotRunRepository(database).start_run(SPEC)
    orders = OrderRepository(database, clock=ticking_clock())
    cid = orders.insert_intent(intent(run.id)).client_order_id
    orders.mark_sent(cid)

    partial = orders.apply_update(
        cid, OrderUpdate("order_updated", status="open", filled=0.004, average_price=101.0)
    )
    orders.apply_update(
        cid, OrderUpdate("order_filled", status="closed", filled=0.005, average_price=100.5,
                         fee=1.0, at=T0 + timedelta(minutes=5))
    )  # fmt: skip
    late = orders.apply_update(
        cid, OrderUpdate("order_updated", status="open", filled=0.004, details={"via": "ws"})
    )

    assert (partial.status, partial.filled) == ("open", 0.004)
    assert (late.status, late.filled, late.average_price, late.fee) == ("closed", 0.005, 100.5, 1.0)
    events = orders.events(cid)
    assert [event.kind for event in events] == [
        "order_submitted",
        "order_updated",
        "order_filled",
        "order_updated",
    ]
    assert events[2].at == T0 + timedelta(minutes=5)
    assert events[-1].details == {"via": "ws"} and events[-1].order_id == late.id
    assert orders.open_orders(run.id) == []


def test_record_event_when_no_order_row_keeps_it_by_client_order_id(database: Database) -> None:
    orders = OrderRepository(database)

    orders.record_event("mb-denied", "order_denied", T0, {"reason": "max positions"})

    (event,) = orders.events("mb-denied")
    assert (event.order_id, event.kind, event.at, event.details) == (
        None,
        "order_denied",
        T0,
        {"reason": "max positions"},
    )


def test_apply_update_when_the_store_refuses_it_stores_no_event_either(
    database: Database,
) -> None:
    # The event and the order's new values are one transaction: a negative fee fails the
    # orders table's check, and the event written before it in the transaction goes too.
    run = BotRunRepository(database).start_run(SPEC)
    orders = OrderRepository(database)
    cid = orders.insert_intent(intent(run.id)).client_order_id
    events_before = count_rows(database, "order_events")

    with pytest.raises(DataError, match=f"order {cid}: refused by the store"):
        orders.apply_update(cid, OrderUpdate("order_filled", status="closed", fee=-1.0))

    assert count_rows(database, "order_events") == events_before
    assert orders.get(cid).status == "intent"


def test_apply_update_when_order_unknown_is_refused(database: Database) -> None:
    with pytest.raises(DataError, match="no order with client order id 'nope'"):
        OrderRepository(database).apply_update("nope", OrderUpdate("order_filled"))


# ---------------------------------------------------------------------------- records


def test_record_trade_when_orders_exist_reads_back_equal(database: Database) -> None:
    run = BotRunRepository(database).start_run(SPEC)
    orders = OrderRepository(database)
    entry = orders.insert_intent(intent(run.id, "mb-in")).client_order_id
    sell = intent(run.id, "mb-out", intent="exit", side="sell", cost=None, amount=0.005)
    leave = orders.insert_intent(sell).client_order_id
    trade = TradeRecord(
        bot_run_id=run.id, strategy="sma_crossover", symbol="BTC/USDT", direction="long",
        size=0.005, entry_time=T0, entry_price=100.0, exit_time=T0 + timedelta(hours=3),
        exit_price=110.0, pnl=0.048, pnl_pct=9.6, fees=0.002, exit_reason="take_profit",
        entry_tag="golden_cross", entry_client_order_id=entry, exit_client_order_id=leave,
    )  # fmt: skip
    records = BotRecordRepository(database)

    records.record_trade(trade)

    assert records.trades(run.id) == [trade]


def test_record_trade_when_order_unknown_is_refused_by_the_foreign_key(
    database: Database,
) -> None:
    run = BotRunRepository(database).start_run(SPEC)
    trade = TradeRecord(
        bot_run_id=run.id, strategy="s", symbol="x", direction="short", size=1.0,
        entry_time=T0, entry_price=1.0, exit_time=T0, exit_price=1.0, pnl=0.0, pnl_pct=0.0,
        fees=0.0, exit_reason="signal", entry_client_order_id="ghost",
    )  # fmt: skip
    with pytest.raises(DataError, match="trade of x: refused by the store"):
        BotRecordRepository(database).record_trade(trade)
    assert count_rows(database, "trades") == 0


def test_record_verification_when_stored_reads_back_equal(database: Database) -> None:
    run = BotRunRepository(database).start_run(SPEC)
    cid = OrderRepository(database).insert_intent(intent(run.id)).client_order_id
    verdict = VerificationRecord(
        client_order_id=cid, status="slippage_high", at=T0, expected_price=100.0,
        fill_price=101.5, slippage=0.015,
        discrepancies=({"status": "slippage_high", "message": "1.5 % worse, above 1 %"},),
    )  # fmt: skip
    records = BotRecordRepository(database)

    records.record_verification(verdict)

    assert records.verifications(cid) == [verdict]
    with pytest.raises(DataError, match="verification status 'OK': use one of verified"):
        records.record_verification(VerificationRecord(client_order_id=cid, status="OK", at=T0))


def test_record_risk_event_when_from_the_breaker_keeps_who_and_why(database: Database) -> None:
    run = BotRunRepository(database).start_run(SPEC)
    breaker = CircuitBreaker()
    breaker.trip(TripKind.DRAWDOWN, "drawdown 21 % above 20 %", T0)
    breaker.override(OverrideMode.HALT, "alice", "exchange maintenance", T0)
    records = BotRecordRepository(database)

    for event in breaker.drain_events():
        records.record_risk_event(event, bot_run_id=run.id)

    table = Base.metadata.tables["risk_events"]
    with database.engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.kind, table.c.who, table.c.why, table.c.details).order_by(table.c.id)
        ).all()
    assert [(row.kind, row.who, row.why) for row in rows] == [
        ("circuit_breaker_tripped", None, None),
        ("override", "alice", "exchange maintenance"),
    ]
    assert rows[0].details == {"trip": "drawdown", "reason": "drawdown 21 % above 20 %"}


# ---------------------------------------------------------------------------- commands


def test_pending_commands_when_queued_come_in_order_until_settled(database: Database) -> None:
    commands = BotCommandRepository(database, clock=ticking_clock())
    halt = commands.queue("halt", by="alice", reason="news at 14:00")
    exit_all = commands.queue("force_exit", by="bob", reason="flatten", args={"all": True})
    entry = commands.queue("force_entry", by="bob", reason="test", args={"symbol": "ETH/USDT"})

    assert [c.id for c in commands.pending()] == [halt.id, exit_all.id, entry.id]
    assert (exit_all.args, exit_all.by, exit_all.reason) == ({"all": True}, "bob", "flatten")

    done = commands.acknowledge(halt.id, "entries halted")
    refused = commands.reject(entry.id, "ETH/USDT is not traded by this bot")

    assert (done.status, done.result, done.acknowledged_at) == (
        "acknowledged",
        "entries halted",
        T0 + timedelta(seconds=3),
    )
    assert (refused.status, refused.result) == ("rejected", "ETH/USDT is not traded by this bot")
    assert [c.id for c in commands.pending()] == [exit_all.id]
    with pytest.raises(DataError, match=f"bot command {halt.id} is acknowledged already"):
        commands.reject(halt.id, "too late")
    with pytest.raises(DataError, match="no bot command with id 999"):
        commands.acknowledge(999, "x")


@pytest.mark.parametrize(
    ("kind", "by", "reason", "args", "message"),
    [
        ("explode", "a", "r", {}, "unknown bot command 'explode'"),
        ("stop", "a", "  ", {}, "give a reason"),
        ("stop", "", "r", {}, "say who asks"),
        ("stop", "a", "r", {"symbol": "x"}, "unexpected argument"),
        ("force_exit", "a", "r", {}, "name one SYMBOL or give --all"),
        ("force_exit", "a", "r", {"symbol": "x", "all": True}, "name one SYMBOL or give --all"),
        ("force_entry", "a", "r", {}, "name the SYMBOL"),
    ],
)
def test_queue_when_command_invalid_stores_nothing(
    database: Database, kind: str, by: str, reason: str, args: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        BotCommandRepository(database).queue(kind, by=by, reason=reason, args=args)
    assert count_rows(database, "bot_commands") == 0
