"""Sample logs for the evidence tests: entries with accents, quotes, line breaks, corrections, re-keyed ones.

Leaf hashes are computed here with the reference `leaf_data` (`json.dumps`), so that the verifier's
fast encoder is checked against it on every sample.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from panicsafe.logbook.evidence.bundle import Bundle, CrisisInfo, PublicKeyInfo, build_bundle, ed25519_signer
from panicsafe.logbook.evidence.leaf import (
    CHAIN_GENESIS,
    body_commitment,
    chain_hash,
    format_time,
    leaf_hash_of,
)

KINDS = ("fact", "decision", "action", "communication", "system")
SUMMARIES = (
    "Décision : basculer les urgences en mode dégradé",
    'Fait : le serveur "FS-01" est chiffré ; rançon demandée (5 BTC)',
    "Action : coupure des flux vers le GHT à 14 h 02 — confirmée",
    "Communication : déclaration à l'ARS / CERT Santé envoyée",
    "Point de situation : 42 postes isolés, messagerie indisponible 🚑",
    "=SOMME(A1:A9) saisie telle quelle; chemin C:\\Partage\\Urgences",
)
BODIES = (
    "Décidé en cellule restreinte.\nPrésents : directrice, DSI, RSSI.\nRelevé à 14:03.",
    "",
    "Tél. au standard : « reprise prévue à 18 h ».\tÀ confirmer.",
    "Œuvre collective — ça dépend du fournisseur ; voir fiche réflexe n° 7.",
    "Ligne avec un caractère de contrôle \x01 et un séparateur \u2028 de ligne.",
)
AUTHORS = ("Dr Amélie Martin", "Jérôme Lefèvre (DSI)", "Françoise Nguyễn", "Cellule de crise", "système")


@dataclass
class SampleLog:
    """A signed bundle and what made it: its private key and the entries as given to the builder."""

    bundle: Bundle
    key: Ed25519PrivateKey
    entries: list[dict[str, Any]]


def sample_entries(n: int, tenant: str, crisis: str, mode: str = "real", seed: int = 7) -> list[dict[str, Any]]:
    """n entries with stored leaf and chain hashes (computed with the reference encoder)."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 23, 13, 0, 0, 250000, tzinfo=UTC)
    authors = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in AUTHORS]
    cells = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(3)]
    entries: list[dict[str, Any]] = []
    chain = CHAIN_GENESIS
    for seq in range(1, n + 1):
        moment = start + timedelta(seconds=37 * seq, microseconds=seq)
        rekeyed = seq % 13 == 0
        salt = rng.randbytes(16)
        body = BODIES[seq % len(BODIES)]
        who = seq % len(AUTHORS)
        entry: dict[str, Any] = {
            "v": 1,
            "tenant": tenant,
            "crisis": crisis,
            "seq": seq,
            "occurred_at": format_time(moment - timedelta(hours=2) if rekeyed else moment),
            "recorded_at": format_time(moment + timedelta(milliseconds=4)),
            "rekeyed": rekeyed,
            "author": {"id": None if who == 4 else authors[who], "label": AUTHORS[who]},
            "source": ("manual", "chat", "sara", "docs")[seq % 4],
            "kind": KINDS[seq % len(KINDS)],
            "mode": mode,
            "summary": f"{SUMMARIES[seq % len(SUMMARIES)]} (n° {seq})",
            "body_commitment": body_commitment(salt, body),
            "cell": None if seq % 3 == 0 else cells[seq % 3],
            "links": {"message": str(uuid.UUID(int=seq)), "document": f"doc-{seq}"} if seq % 2 else {},
            "corrects": seq - 2 if seq % 10 == 0 else None,
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))) if seq % 4 else None,
            "salt": salt.hex(),
            "body": body,
        }
        leaf = leaf_hash_of(entry)
        chain = chain_hash(chain, leaf)
        entry["leaf_hash"] = leaf.hex()
        entry["chain_hash"] = chain.hex()
        entries.append(entry)
    return entries


def sample_log(
    n: int = 200,
    *,
    mode: str = "real",
    checkpoint_every: int = 50,
    inclusion_proofs: bool = True,
    title: str = "Rançongiciel — CH de Démo « Sainte-Anne »",
) -> SampleLog:
    """A bundle of n entries signed with a fresh Ed25519 key, earlier checkpoints every `checkpoint_every`."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    entries = sample_entries(n, tenant, crisis, mode)
    bundle = build_bundle(
        tenant=tenant,
        crisis=CrisisInfo(crisis, title, mode),
        entries=entries,
        public_key=PublicKeyInfo.from_raw(public, 3),
        signer=ed25519_signer(key),
        issued_at="2026-11-23T18:00:00.000000Z",
        exported_at="2026-11-23T18:00:01.000000Z",
        sign_earlier_at=range(checkpoint_every, n, checkpoint_every) if checkpoint_every else (),
        inclusion_proofs=inclusion_proofs,
    )
    return SampleLog(bundle, key, entries)
