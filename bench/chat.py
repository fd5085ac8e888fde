"""Chat: publish-to-delivery latency and sustained send rate to 200 WebSocket clients, beside Synapse;
search over 100,000 sealed messages, beside a plaintext scan.

Delivery (`bench.chatload` drives both sides the same way):
- PanicSAFE: the gateway (`Platform.gateway_workers` processes) and the chat service on the devstack's
  NATS, PostgreSQL and OpenBao. One tenant, one crisis; `LISTENER_USERS` members and one member per
  sender enrol with TOTP through the HTTP API. Each of the 200 clients opens its own WebSocket
  (graphql-transport-ws) and subscribes to `chatUpdates` of the crisis; senders call `sendMessage` into
  the crisis-wide channel. The per-person send limit is raised for the run (`CHAT_SEND_RATE_PER_S`) so
  that it does not stand in for capacity, as Synapse's `rc_message` is.
- Synapse: `bench.chat_synapse` (its own virtual environment, the same PostgreSQL, 200 `/sync` clients),
  run after the platform has stopped, so that each has the machine to itself.
- Phases: warm-up, then 10 msg/s for 60 s (p50/p99 publish-to-delivery over every delivery), then a
  ramp 20, 50, 100, ... msg/s, 10 s each; the highest step delivered in full (99 %, p99 < 2 s, 95 % of
  the rate sent) is the sustained send rate.

Search: 100,000 messages are written into one crisis as the service writes them (sealed, with their
blind-index terms), then `chatSearch` is timed through the gateway for a rare word, a frequent word
and two words. The baseline is what a plaintext chat would do on the same PostgreSQL: the same
messages in clear, `ILIKE '%word%'`, newest first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets

from bench.chat_synapse import synapse_figures
from bench.chatload import ScenarioFigures, run_scenario
from bench.common import Figure, Result
from bench.gateway import gwclient_module
from panicsafe.chat import search as blind
from panicsafe.contracts.chat import message_purpose
from panicsafe.core.crypto import EnvelopeCipher, TransitKeys
from panicsafe.core.db.database import Database
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.platform import Platform

log = logging.getLogger(__name__)
LISTENER_USERS = 20
SENDERS = 10
CLIENTS = 200
SEARCH_MESSAGES = int(os.environ.get("CHAT_BENCH_SEARCH_MESSAGES", "100000"))
SEARCH_ROUNDS = 15
UPDATES = "subscription($c: ID!) { chatUpdates(crisisId: $c) { kind message { text } } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { duplicate } }"
SEARCH = "query($c: ID!, $t: String!) { chatSearch(crisisId: $c, text: $t, first: 20) { messages { id } } }"
WORDS = [
    "serveur",
    "messagerie",
    "annuaire",
    "sauvegarde",
    "bloc",
    "opératoire",
    "urgences",
    "laboratoire",
    "imagerie",
    "pharmacie",
    "astreinte",
    "directeur",
    "rançon",
    "chiffrement",
    "réseau",
    "isolement",
    "patient",
    "transfert",
    "SAMU",
    "ARS",
    "CERT",
    "plainte",
    "CNIL",
    "téléphone",
    "dossier",
    "papier",
    "procédure",
    "dégradée",
    "continuité",
    "reprise",
    "restauration",
    "poste",
]


class PanicSafeAdapter:
    """`bench.chatload.ChatAdapter` for the gateway: WebSocket subscriptions, GraphQL mutations."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.url: str = config["url"]
        self.crisis: str = config["crisis"]
        self.channel: str = config["channel"]
        self.listener_tokens: list[str] = config["listener_tokens"]
        self.sender_tokens: list[str] = config["sender_tokens"]
        self.http: httpx.AsyncClient | None = None

    async def open(self) -> None:
        self.http = httpx.AsyncClient(base_url=self.url, timeout=30, limits=httpx.Limits(max_connections=128))

    async def listen(self, client: int, on_text: Callable[[str], None], ready: asyncio.Event) -> None:
        token = self.listener_tokens[client % len(self.listener_tokens)]
        ws_url = self.url.replace("http://", "ws://") + "/graphql"
        while True:
            try:
                async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], max_queue=None) as ws:  # type: ignore[list-item]
                    await ws.send(
                        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
                    )
                    ack = json.loads(await ws.recv())
                    if ack.get("type") != "connection_ack":
                        raise RuntimeError(f"no ack: {ack}")
                    await ws.send(
                        json.dumps(
                            {
                                "id": "1",
                                "type": "subscribe",
                                "payload": {"query": UPDATES, "variables": {"c": self.crisis}},
                            }
                        )
                    )
                    await asyncio.sleep(0.5)  # the subscription is registered once its first frame is read
                    ready.set()
                    async for raw in ws:
                        message = json.loads(raw)
                        if message.get("type") == "next":
                            update = message["payload"]["data"]["chatUpdates"]
                            if update["kind"] == "POSTED" and update["message"]:
                                on_text(update["message"]["text"])
                        elif message.get("type") == "ping":
                            await ws.send(json.dumps({"type": "pong"}))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (reconnect, like a client)
                log.warning("listener %d reconnecting: %s", client, exc)
                await asyncio.sleep(0.5)

    async def send(self, sender: int, text: str) -> None:
        assert self.http is not None
        body = {
            "query": SEND,
            "variables": {"i": {"channelId": self.channel, "clientId": secrets.token_urlsafe(12), "text": text}},
        }
        headers = {"Authorization": f"Bearer {self.sender_tokens[sender % len(self.sender_tokens)]}"}
        response = await self.http.post("/graphql", json=body, headers=headers)
        answer = response.json()
        if response.status_code != 200 or answer.get("errors"):
            raise RuntimeError(f"send refused: {response.status_code} {str(answer)[:200]}")

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()


# -- set-up ----------------------------------------------------------------------------------------


async def prepare(platform: Platform) -> dict[str, Any]:
    gw = gwclient_module()
    async with gw.gateway_of(platform) as gateway, gateway.client() as client:
        admin = await gw.new_tenant_admin(gateway, client, name="GHT Bench chat")
        crisis = (await gw.declare(client, admin, "Rançongiciel : messagerie de crise"))["id"]
        listeners = [
            await gw.invite_and_enrol(
                client, admin, display_name=f"Lecteur {i}", crisis_id=crisis, crisis_role="MEMBER"
            )
            for i in range(LISTENER_USERS)
        ]
        senders = [
            await gw.invite_and_enrol(
                client, admin, display_name=f"Émetteur {i}", crisis_id=crisis, crisis_role="MEMBER"
            )
            for i in range(SENDERS)
        ]
        channel = await crisis_channel(gw, client, admin, crisis)
        search_crisis = (await gw.declare(client, admin, "Recherche : 100 000 messages"))["id"]
        search_channel = await crisis_channel(gw, client, admin, search_crisis)
    return {
        "url": platform.gateway_url,
        "crisis": crisis,
        "channel": channel,
        "listener_tokens": [a.session.access for a in listeners],
        "sender_tokens": [a.session.access for a in senders],
        "admin_token": admin.session.access,
        "admin_id": admin.user_id,
        "tenant": admin.tenant_id,
        "search_crisis": search_crisis,
        "search_channel": search_channel,
    }


async def crisis_channel(gw: Any, client: httpx.AsyncClient, account: Any, crisis: str) -> str:
    for _ in range(100):
        body = await gw.gql_raw(
            client, account.session, "query($c: ID!) { chatChannels(crisisId: $c) { id kind } }", {"c": crisis}
        )
        channels = (body.get("data") or {}).get("chatChannels") or []
        if channels:
            return str(next(c["id"] for c in channels if c["kind"] == "CRISIS"))
        await asyncio.sleep(0.1)
    raise RuntimeError("the crisis' channels never opened")


# -- search ----------------------------------------------------------------------------------------


def sentence(rng: Any, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    return f"Point {n} : " + " ".join(words) + f" ref{n}."


async def seed_search(platform: Platform, setup: dict[str, Any], count: int) -> float:
    """`count` messages written as the chat service writes them (sealed, indexed), in big transactions;
    and the same messages in clear in a table of their own, for the baseline. Returns seconds spent."""
    import random

    rng = random.Random(7)
    started = time.perf_counter()
    app_dsn = (platform.directory / "secrets" / "chat" / "database_url").read_text()
    db = Database(app_dsn, "chat", max_size=2)
    await db.open()
    keys = TransitKeys(platform.stack.openbao.session("chat"))  # the chat's own identity, as the service
    cipher = EnvelopeCipher(keys)
    tenant, crisis, channel = setup["tenant"], setup["search_crisis"], setup["search_channel"]
    key = await blind.SearchKeys(db, keys).key(tenant)
    plain: list[tuple[int, str]] = []
    try:
        batch = 2000
        for start in range(0, count, batch):
            rows, terms = [], []
            for n in range(start + 1, min(count, start + batch) + 1):
                text = sentence(rng, n)
                plain.append((n, text))
                message_id = str(uuid.uuid4())
                body = await cipher.encrypt(tenant, message_id, text.encode(), purpose=message_purpose(1))
                rows.append((message_id, n, body))
                for term in blind.terms(key, crisis, blind.words(text)):
                    terms.append((term, n))
            async with db.tenant(tenant) as conn:
                await conn.execute(
                    """INSERT INTO messages (id, tenant_id, crisis_id, channel_id, seq, rev, client_id, author_id,
                           author_label, body, created_at)
                       SELECT m.id, $1, $2, $3, m.seq, m.seq, 'seed-' || m.seq, $4, 'Banc d''essai', m.body,
                              now() - make_interval(secs => ($5 - m.seq))
                       FROM unnest($6::uuid[], $7::bigint[], $8::bytea[]) AS m(id, seq, body)""",
                    tenant,
                    crisis,
                    channel,
                    setup["admin_id"],
                    count,
                    [r[0] for r in rows],
                    [r[1] for r in rows],
                    [r[2] for r in rows],
                )
                await conn.execute(
                    """INSERT INTO search_terms (tenant_id, crisis_id, term, posted, channel_id, seq)
                       SELECT $1, $2, t.term, t.seq, $3, t.seq
                       FROM unnest($4::bytea[], $5::bigint[]) AS t(term, seq)""",
                    tenant,
                    crisis,
                    channel,
                    [t[0] for t in terms],
                    [t[1] for t in terms],
                )
            log.info("seeded %d messages", min(count, start + batch))
        async with db.tenant(tenant) as conn:
            await conn.execute("UPDATE channels SET last_seq = $2, last_rev = $2 WHERE id = $1", channel, count)
    finally:
        await db.close()
    admin = await asyncpg.connect(platform.stack.postgres.admin_dsn)
    try:
        await admin.execute("DROP TABLE IF EXISTS public.bench_plain_messages")
        await admin.execute(
            "CREATE TABLE public.bench_plain_messages (seq bigint PRIMARY KEY, created_at timestamptz, text text)"
        )
        await admin.copy_records_to_table(
            "bench_plain_messages",
            schema_name="public",
            records=[(n, None, text) for n, text in plain],
            columns=["seq", "created_at", "text"],
        )
        await admin.execute(
            "UPDATE public.bench_plain_messages SET created_at = now() - make_interval(secs => ($1 - seq))", count
        )
        await admin.execute("CREATE INDEX ON public.bench_plain_messages (created_at)")
        await admin.execute("ANALYZE public.bench_plain_messages")
        await admin.execute("ANALYZE chat.search_terms")
        await admin.execute("ANALYZE chat.messages")
    finally:
        await admin.close()
    return time.perf_counter() - started


async def time_search(platform: Platform, setup: dict[str, Any]) -> tuple[dict[str, list[float]], dict[str, int]]:
    queries = {"rare": "ref4242", "frequent": "imagerie", "two_words": "urgences pharmacie"}
    timings: dict[str, list[float]] = {k: [] for k in queries}
    hits: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {setup['admin_token']}"}
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        for _ in range(SEARCH_ROUNDS):
            for name, text in queries.items():
                body = {"query": SEARCH, "variables": {"c": setup["search_crisis"], "t": text}}
                started = time.perf_counter()
                response = await client.post("/graphql", json=body, headers=headers)
                timings[name].append((time.perf_counter() - started) * 1000)
                answer = response.json()
                if answer.get("errors"):
                    raise RuntimeError(f"search failed: {answer['errors']}")
                hits[name] = len(answer["data"]["chatSearch"]["messages"])
    return timings, hits


async def time_plain_search(admin_dsn: str) -> dict[str, list[float]]:
    queries = {
        "rare": ["%ref4242%"],
        "frequent": ["%imagerie%"],
        "two_words": ["%urgences%", "%pharmacie%"],
    }
    timings: dict[str, list[float]] = {k: [] for k in queries}
    conn = await asyncpg.connect(admin_dsn)
    try:
        for _ in range(SEARCH_ROUNDS):
            for name, patterns in queries.items():
                where = " AND ".join(f"text ILIKE ${i + 1}" for i in range(len(patterns)))
                started = time.perf_counter()
                await conn.fetch(
                    f"SELECT seq, text FROM public.bench_plain_messages WHERE {where} "  # noqa: S608 (ours)
                    "ORDER BY created_at DESC LIMIT 20",
                    *patterns,
                )
                timings[name].append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    return timings


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


# -- the run ---------------------------------------------------------------------------------------


def main() -> Result:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = Result("chat")
    with tempfile.TemporaryDirectory(prefix="panicsafe-bench-chat-") as folder:
        stack = DevStack(Path(folder) / "stack", components=("nats", "postgres", "openbao")).start()
        try:
            platform = Platform(
                stack,
                Path(folder) / "platform",
                services=("gateway", "chat"),
                settings={"chat": {"SEND_RATE_PER_S": "100000", "SEND_BURST": "100000"}},
            )
            try:
                asyncio.run(platform.start())
                setup = asyncio.run(prepare(platform))
                ours = run_scenario(
                    "bench.chat:PanicSafeAdapter",
                    {k: setup[k] for k in ("url", "crisis", "channel", "listener_tokens", "sender_tokens")},
                    clients=CLIENTS,
                    senders=SENDERS,
                )
                seeded = asyncio.run(seed_search(platform, setup, SEARCH_MESSAGES))
                searched, hits = asyncio.run(time_search(platform, setup))
                plain = asyncio.run(time_plain_search(stack.postgres.admin_dsn))
            finally:
                platform.stop()
            theirs = synapse_figures(
                stack.postgres.admin_dsn, Path(folder) / "synapse", clients=CLIENTS, senders=SENDERS
            )
        finally:
            stack.stop()
    add_figures(result, ours, theirs, searched, plain)
    result.notes += [
        f"{CLIENTS} WebSocket clients ({LISTENER_USERS} members) on one crisis, {SENDERS} senders; Synapse: "
        f"{CLIENTS} /sync clients (own devices) in one room, same PostgreSQL, run after ours on the same machine",
        f"PanicSAFE steady phase: {json.dumps(ours.steady)}",
        f"Synapse steady phase: {json.dumps(theirs.steady)}",
        "ramp steps (ours): "
        + json.dumps(
            [
                {k: s.get(k) for k in ("target_per_s", "sent_per_s", "p99_ms", "delivered_ratio", "passed")}
                for s in ours.steps
            ]
        ),
        "ramp steps (Synapse): "
        + json.dumps(
            [
                {k: s.get(k) for k in ("target_per_s", "sent_per_s", "p99_ms", "delivered_ratio", "passed")}
                for s in theirs.steps
            ]
        ),
        f"search: {SEARCH_MESSAGES} messages seeded in {seeded:.0f} s; hits {hits}; medians ms "
        + json.dumps({k: round(statistics.median(v), 1) for k, v in searched.items()})
        + "; plaintext ILIKE medians ms "
        + json.dumps({k: round(statistics.median(v), 1) for k, v in plain.items()}),
    ]
    return result


def add_figures(
    result: Result,
    ours: ScenarioFigures,
    theirs: ScenarioFigures,
    searched: dict[str, list[float]],
    plain: dict[str, list[float]],
) -> None:
    result.add(Figure("delivery_p50_ms", ours.steady_p50_ms, "ms", baseline=("synapse_p50_ms", theirs.steady_p50_ms)))
    result.add(
        Figure(
            "delivery_p99_ms",
            ours.steady_p99_ms,
            "ms",
            target="< 150 and < Synapse",
            baseline=("synapse_p99_ms", theirs.steady_p99_ms),
            met=ours.steady_p99_ms < 150 and ours.steady_p99_ms < theirs.steady_p99_ms,
        )
    )
    result.add(
        Figure(
            "delivered_ratio",
            ours.steady_delivered_ratio,
            "",
            baseline=("synapse_delivered_ratio", theirs.steady_delivered_ratio),
        )
    )
    result.add(
        Figure(
            "sustained_send_per_s",
            ours.max_sustained_per_s,
            "1/s",
            target="> Synapse",
            baseline=("synapse_sustained_send_per_s", theirs.max_sustained_per_s),
            met=ours.max_sustained_per_s > theirs.max_sustained_per_s,
        )
    )
    worst = max(p99(v) for v in searched.values())
    plain_worst = max(p99(v) for v in plain.values())
    result.add(
        Figure(
            "search_100k_p99_ms",
            worst,
            "ms",
            target="< 500",
            baseline=("plaintext_ilike_p99_ms", plain_worst),
            met=worst < 500,
        )
    )
