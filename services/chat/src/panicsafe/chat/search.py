"""Searching sealed messages: a blind index of keyed word hashes.

The text of a message is sealed, so PostgreSQL cannot search it. When a message is written, its words
are normalised (Unicode NFKD, accents dropped, case folded, split on anything that is not a letter or
a digit) and each distinct word becomes a term: the first 16 bytes of
HMAC-SHA256(search key of the tenant, crisis id | word). The search key is a random 256-bit key drawn
from the tenant's OpenBao transit key and stored only wrapped by it; this process keeps it in memory.
A query is normalised the same way, its words hashed, and the messages holding every term are found
by index, newest first.

What it reveals to someone who reads the database (or a dump) without the key: which messages of one
crisis share a word (equal terms), how many distinct words a message has, and when; not the words,
and nothing across crises (the crisis id is in every hash). What it cannot do: prefixes, fuzzy
matching, phrases (words are matched anywhere in the message, in any order).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import unicodedata
import uuid

from panicsafe.chat.access import NO_CHANNEL
from panicsafe.chat.domain import standing
from panicsafe.chat.reading import page_of
from panicsafe.chat.store import channels as channel_rows
from panicsafe.chat.store import search as store
from panicsafe.contracts.actor import Actor
from panicsafe.contracts.chat import MessagePage, SearchRequest
from panicsafe.core.crypto import TransitKeys
from panicsafe.core.db.database import Database
from panicsafe.core.errors import invalid, not_found, unavailable

WORD_RE = re.compile(r"[^\W_]+")
MIN_WORD = 2
MAX_WORD = 64
MAX_TERMS = 256
TERM_BYTES = 16


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The distinct searchable words of `text`, in order of first appearance (at most `MAX_TERMS`)."""
    seen: dict[str, None] = {}
    for word in WORD_RE.findall(normalise(text)):
        if MIN_WORD <= len(word) <= MAX_WORD or (word.isdigit() and len(word) <= MAX_WORD):
            seen.setdefault(word, None)
            if len(seen) >= MAX_TERMS:
                break
    return list(seen)


def terms(key: bytes, crisis: str, text_words: list[str]) -> list[bytes]:
    prefix = uuid.UUID(crisis).bytes
    return [hmac.new(key, prefix + w.encode(), hashlib.sha256).digest()[:TERM_BYTES] for w in text_words]


class SearchKeys:
    """The tenants' search keys: created once, stored wrapped, unwrapped by OpenBao, kept in memory."""

    def __init__(self, db: Database, keys: TransitKeys) -> None:
        self.db = db
        self.keys = keys
        self._cache: dict[str, bytes] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def key(self, tenant: str) -> bytes:
        cached = self._cache.get(tenant)
        if cached is not None:
            return cached
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            cached = self._cache.get(tenant)
            if cached is not None:
                return cached
            async with self.db.tenant(tenant) as conn:
                wrapped = await store.wrapped_key(conn, tenant)
            if wrapped is None:
                _, fresh = await self.keys.data_key(tenant)
                async with self.db.tenant(tenant) as conn:
                    await store.insert_wrapped_key(conn, tenant, fresh)
                    wrapped = await store.wrapped_key(conn, tenant)
            if wrapped is None:
                raise unavailable("clé de recherche indisponible")
            key = await self.keys.unwrap(tenant, wrapped)
            self._cache[tenant] = key
            return key

    def forget(self, tenant: str) -> None:
        self._cache.pop(tenant, None)


class Search:
    """A person's search of one crisis, over the channels they may read (or one of them)."""

    def __init__(self, db: Database, keys: SearchKeys) -> None:
        self.db = db
        self.keys = keys

    async def search(self, actor: Actor, request: SearchRequest) -> MessagePage:
        me = standing(actor, request.crisis)
        query_words = words(request.text)
        if not query_words:
            raise invalid("Cherchez au moins un mot de deux lettres.")
        key = await self.keys.key(actor.tenant)
        query_terms = terms(key, request.crisis, query_words)
        async with self.db.tenant(actor.tenant) as conn:
            visible = [c for c in await channel_rows.channels(conn, request.crisis) if me.reads(c.audience)]
            ids = [c.id for c in visible]
            if request.channel is not None:
                if request.channel not in ids:
                    raise not_found(NO_CHANNEL)
                ids = [request.channel]
            rows = await store.search(conn, request.crisis, query_terms, ids, request.first + 1)
        return page_of(rows, request.first)
