"""Exports of a log as evidence: the JSON bundle, the printable PDF, and CSV.

An export first has a checkpoint signed for the log as it is now, then writes every entry up to it,
so the file and its signature cover the same entries. A log is one crisis in one mode: exercise
entries never appear in a real crisis' export. The file is sealed under the tenant key in chunks in
the object store; only the person who asked for it can fetch it, until it expires.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from minio import Minio
from minio.error import S3Error

from panicsafe.contracts.actor import Actor
from panicsafe.contracts.logbook import ExportChunk, ExportChunkRequest, ExportFormat, ExportReply, ExportRequest
from panicsafe.core.crypto import EnvelopeCipher
from panicsafe.core.db.database import Database
from panicsafe.core.errors import invalid, not_found
from panicsafe.logbook import store
from panicsafe.logbook.access import exporter
from panicsafe.logbook.core import Checkpoint, LogbookCore, key_of
from panicsafe.logbook.evidence.bundle import as_bundle, bundle_json
from panicsafe.logbook.evidence.leaf import format_time

BUNDLE_FORMAT = "panicsafe-logbook-bundle/v1"
CHUNK_BYTES = 1024 * 1024
# Inclusion proofs for every entry up to this size (beyond, the verifier rebuilds the tree anyway).
MAX_INCLUSION_PROOFS = 10_000
# Earlier checkpoints carried in a bundle, evenly spread, with their consistency proofs.
MAX_EARLIER_CHECKPOINTS = 200
EXPORT_PURPOSE = "logbook-export"

CONTENT_TYPES = {
    ExportFormat.JSON: "application/json",
    ExportFormat.PDF: "application/pdf",
    ExportFormat.CSV: "text/csv; charset=utf-8",
}


def entry_record(row: Any, body: str | None) -> dict[str, Any]:
    """One entry of the bundle: exactly the fields its leaf commits to, plus salt, body and hashes."""
    return {
        "v": 1,
        "tenant": row["tenant_id"],
        "crisis": row["crisis_id"],
        "seq": row["seq"],
        "occurred_at": format_time(row["occurred_at"]),
        "recorded_at": format_time(row["recorded_at"]),
        "rekeyed": row["rekeyed"],
        "author": {"id": row["author_id"], "label": row["author_label"]},
        "source": row["source"],
        "kind": row["kind"],
        "mode": row["mode"],
        "summary": row["summary"],
        "body_commitment": bytes(row["body_commitment"]).hex(),
        "cell": row["cell_id"],
        "links": row["links"],
        "corrects": row["corrects"],
        "event_id": row["event_id"],
        "salt": bytes(row["salt"]).hex(),
        "body": body,
        "leaf_hash": bytes(row["leaf_hash"]).hex(),
        "chain_hash": bytes(row["chain_hash"]).hex(),
    }


def checkpoint_record(cp: Checkpoint) -> dict[str, Any]:
    return {
        "tree_size": cp.tree_size,
        "root_hash": cp.root_hash.hex(),
        "chain_head": cp.chain_head.hex(),
        "issued_at": cp.issued_at,
        "signature": base64.b64encode(cp.signature).decode(),
        "key_version": cp.key_version,
    }


def _spread(items: list[Any], limit: int) -> list[Any]:
    if len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


async def build_bundle(core: LogbookCore, actor: Actor, request: ExportRequest) -> dict[str, Any]:
    """The JSON evidence bundle of a whole log, up to a checkpoint signed now."""
    key = key_of(request)
    final = await core.checkpoint(actor.tenant, key)
    if final is None:
        raise not_found("La main courante de cette crise est vide.")
    async with core.db.tenant(actor.tenant) as conn:
        rows = await store.entries_range(conn, key, 1, final.tree_size)
        earlier_rows = await store.checkpoints_upto(conn, key, final.tree_size - 1)
        tree = await core.trees.tree(conn, key, final.tree_size)
    entries = [entry_record(row, await core.body_of(row)) for row in rows]
    earlier = [
        Checkpoint.from_row(actor.tenant, key, row)
        for row in _spread(earlier_rows, MAX_EARLIER_CHECKPOINTS)
        if int(row["key_version"]) == final.key_version
    ]
    size = final.tree_size
    public = await core.signer.public_key(actor.tenant, final.key_version)
    return {
        "format": BUNDLE_FORMAT,
        "exported_at": format_time(datetime.now(UTC)),
        "tenant": actor.tenant,
        "crisis": {"id": request.crisis, "title": request.title, "mode": request.mode.value},
        "entries": entries,
        "checkpoint": checkpoint_record(final),
        "checkpoints": [
            checkpoint_record(cp) | {"consistency_proof": [h.hex() for h in tree.consistency_proof(cp.tree_size, size)]}
            for cp in earlier
        ],
        "inclusion_proofs": [
            {"seq": seq, "path": [h.hex() for h in tree.inclusion_proof(seq - 1, size)]} for seq in range(1, size + 1)
        ]
        if size <= MAX_INCLUSION_PROOFS
        else [],
        "public_key": {"algorithm": "ed25519", "key": base64.b64encode(public).decode(), "version": final.key_version},
    }


def render(bundle: dict[str, Any], fmt: ExportFormat) -> bytes:
    """The file of one format (CPU-bound: run it in a thread)."""
    if fmt == ExportFormat.JSON:
        return bundle_json(as_bundle(bundle))  # one entry per line, the fast encoder
    # Imported on use: the PDF library is heavy and only exports need it.
    if fmt == ExportFormat.CSV:
        from panicsafe.logbook.evidence.csvexport import render_csv

        return render_csv(bundle)
    from panicsafe.logbook.evidence.pdf import render_pdf

    return render_pdf(bundle, verification_url=None)


async def export_log(core: LogbookCore, exports: ExportStore, actor: Actor, request: ExportRequest) -> ExportReply:
    exporter(actor, request.crisis)
    bundle = await build_bundle(core, actor, request)
    content = await asyncio.to_thread(render, bundle, request.format)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    prefix = "main-courante-exercice" if request.mode.value == "exercise" else "main-courante"
    filename = f"{prefix}-{request.crisis[:8]}-{stamp}.{request.format.value}"
    return await exports.save(
        core.db,
        actor,
        request,
        content,
        filename=filename,
        entries=len(bundle["entries"]),
        tree_size=bundle["checkpoint"]["tree_size"],
        root_hash=bundle["checkpoint"]["root_hash"],
    )


class ExportStore:
    """Export files sealed in chunks under `logbook/exports/<tenant>/<export id>/<n>`."""

    def __init__(self, s3: Minio, bucket: str, cipher: EnvelopeCipher, *, ttl_s: int = 3600) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.cipher = cipher
        self.ttl = timedelta(seconds=ttl_s)

    @staticmethod
    def object_name(tenant: str, export_id: str, index: int) -> str:
        return f"logbook/exports/{tenant}/{export_id}/{index:06d}"

    async def save(
        self,
        db: Database,
        actor: Actor,
        request: ExportRequest,
        content: bytes,
        *,
        filename: str,
        entries: int,
        tree_size: int,
        root_hash: str,
    ) -> ExportReply:
        export_id = str(uuid.uuid4())
        chunks = max(1, -(-len(content) // CHUNK_BYTES))
        for index in range(chunks):
            part = content[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES]
            sealed = await self.cipher.encrypt(actor.tenant, f"{export_id}:{index}", part, purpose=EXPORT_PURPOSE)
            name = self.object_name(actor.tenant, export_id, index)
            await asyncio.to_thread(self.s3.put_object, self.bucket, name, io.BytesIO(sealed), len(sealed))
        digest = hashlib.sha256(content).hexdigest()
        content_type = CONTENT_TYPES[request.format]
        async with db.tenant(actor.tenant) as conn:
            await conn.execute(
                "INSERT INTO exports (id, tenant_id, crisis_id, mode, requested_by, format, filename, content_type, "
                "size, sha256, chunks, tree_size, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                "$12, $13)",
                export_id,
                actor.tenant,
                request.crisis,
                request.mode.value,
                actor.subject,
                request.format.value,
                filename,
                content_type,
                len(content),
                digest,
                chunks,
                tree_size,
                datetime.now(UTC) + self.ttl,
            )
        return ExportReply(
            export_id=export_id,
            filename=filename,
            content_type=content_type,
            size=len(content),
            sha256=digest,
            chunks=chunks,
            entries=entries,
            tree_size=tree_size,
            root_hash=root_hash,
        )

    async def chunk(self, db: Database, actor: Actor, request: ExportChunkRequest) -> ExportChunk:
        """One chunk of an export, for the person who asked for it, before it expires."""
        async with db.tenant(actor.tenant) as conn:
            row = await conn.fetchrow(
                "SELECT chunks, filename, content_type, size, sha256 FROM exports "
                "WHERE id = $1 AND requested_by = $2 AND expires_at > now()",
                request.export_id,
                actor.subject,
            )
        if row is None:
            raise not_found("Export introuvable ou expiré.")
        if request.index >= row["chunks"]:
            raise invalid("Ce morceau de l'export n'existe pas.")
        name = self.object_name(actor.tenant, request.export_id, request.index)
        try:
            sealed = await asyncio.to_thread(_read_object, self.s3, self.bucket, name)
        except S3Error as exc:
            raise not_found("Export introuvable ou expiré.") from exc
        part = await self.cipher.decrypt(
            actor.tenant, f"{request.export_id}:{request.index}", sealed, purpose=EXPORT_PURPOSE
        )
        return ExportChunk(
            index=request.index,
            data=base64.b64encode(part).decode(),
            last=request.index == row["chunks"] - 1,
            filename=row["filename"],
            content_type=row["content_type"],
            size=row["size"],
            sha256=row["sha256"],
        )


def _read_object(s3: Minio, bucket: str, name: str) -> bytes:
    response = s3.get_object(bucket, name)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()
