"""Offline verification of a logbook evidence bundle: `measure_verify(n)` (bench/logbook.py calls it with 1,000,000).

Builds an n-entry bundle signed with a real Ed25519 key in a temporary folder, then times the verifier
the way an expert runs it, as its own process: `python -m panicsafe.logbook.verify BUNDLE.json`.
"""

from __future__ import annotations

import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from panicsafe.logbook.evidence.bundle import CrisisInfo, PublicKeyInfo, build_bundle, dump_bundle, ed25519_signer
from panicsafe.logbook.evidence.leaf import body_commitment, format_time

KINDS = ("fact", "decision", "action", "communication", "system")
SOURCES = ("chat", "manual", "sara", "video", "docs")
AUTHORS = ("Dr Amélie Martin", "Jérôme Lefèvre (DSI)", "Cellule de crise — direction", "Françoise Nguyễn", "système")
SUMMARIES = (
    "Décision : basculer les urgences en mode dégradé (procédure papier)",
    "Fait : chiffrement constaté sur le serveur de fichiers du pôle mère-enfant",
    "Action : coupure des interconnexions avec le GHT à 14 h 02",
    "Communication : déclaration à l'ARS et au CERT Santé envoyée",
    "Point de situation n° 3 : 42 postes isolés, messagerie indisponible",
)


def synthetic_entries(n: int, tenant: str, crisis: str, mode: str = "real") -> Iterator[dict[str, Any]]:
    """n plausible entries (accents, links, corrections, re-keyed ones), 1 to 2 per second of crisis time."""
    start = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    authors = [str(uuid.uuid4()) for _ in AUTHORS]
    cells = [str(uuid.uuid4()) for _ in range(4)]
    for seq in range(1, n + 1):
        moment = start + timedelta(milliseconds=700 * seq)
        salt = secrets.token_bytes(16)
        body = f"{SUMMARIES[seq % 5]}. Détail n° {seq} : {'é' * (seq % 7)} suite à l'appel du cadre de santé."
        if seq % 11 == 0:
            body = ""
        rekeyed = seq % 97 == 0
        yield {
            "v": 1,
            "tenant": tenant,
            "crisis": crisis,
            "seq": seq,
            "occurred_at": format_time(moment - timedelta(minutes=30) if rekeyed else moment),
            "recorded_at": format_time(moment + timedelta(milliseconds=3)),
            "rekeyed": rekeyed,
            "author": {"id": authors[seq % 5] if seq % 5 != 4 else None, "label": AUTHORS[seq % 5]},
            "source": SOURCES[seq % 5],
            "kind": KINDS[seq % 5],
            "mode": mode,
            "summary": f"{SUMMARIES[seq % 5]} (n° {seq})",
            "body_commitment": body_commitment(salt, body),
            "cell": cells[seq % 4] if seq % 3 else None,
            "links": {"message": str(uuid.uuid4())} if seq % 2 else {},
            "corrects": seq - 1 if seq % 50 == 0 else None,
            "event_id": str(uuid.uuid4()) if seq % 2 else None,
            "salt": salt,
            "body": body,
        }


def write_bundle(directory: Path, n: int, *, checkpoints: int = 100, inclusion_proofs: int = 1000) -> Path:
    """A signed n-entry bundle in `directory`, with `checkpoints` earlier checkpoints and some inclusion proofs."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    step = max(1, n // (checkpoints + 1))
    bundle = build_bundle(
        tenant=tenant,
        crisis=CrisisInfo(crisis, "Rançongiciel — CH de Démo", "real"),
        entries=synthetic_entries(n, tenant, crisis),
        public_key=PublicKeyInfo.from_raw(public, 1),
        signer=ed25519_signer(key),
        sign_earlier_at=range(step, n, step) if checkpoints else (),
        inclusion_proofs=sorted({1 + (i * 7919) % n for i in range(min(inclusion_proofs, n))}) if n else False,
    )
    path = directory / "bundle.json"
    with path.open("wb") as stream:
        dump_bundle(bundle, stream)
    return path


def measure_verify(n: int) -> dict[str, Any]:
    """Seconds to build and to verify an n-entry bundle (verifier in its own process), file size, peak memory."""
    with tempfile.TemporaryDirectory(prefix="logbook-verify-") as folder:
        started = time.perf_counter()
        path = write_bundle(Path(folder), n)
        built = time.perf_counter() - started
        size = path.stat().st_size
        time.sleep(5)  # let the load of building settle a little
        load_before = os.getloadavg()[0]  # of the machine, just before verifying
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "panicsafe.logbook.verify", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        verified = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode != 0 or not result.stdout.startswith("OK"):
        raise RuntimeError(f"the verifier did not accept the bundle: {result.stdout}{result.stderr}")
    return {
        "entries": n,
        "build_s": built,
        "verify_s": verified,
        "verify_entries_per_s": n / verified if verified else 0.0,
        "bundle_mb": size / 1e6,
        "verify_peak_rss_mb": peak_kib / 1024,
        "load_before": load_before,
        "verifier_output": result.stdout.strip(),
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    for name, value in measure_verify(count).items():
        print(f"{name:22} {value:.3f}" if isinstance(value, float) else f"{name:22} {value}")
