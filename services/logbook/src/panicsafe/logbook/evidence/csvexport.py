"""The main courante as CSV for a spreadsheet: UTF-8 with BOM, `;`, French headers, one row per entry.

A reading copy like the PDF (the proof is the JSON bundle). Cells that a spreadsheet would take for a
formula (starting with = + - @ or a tab) get a leading apostrophe, so that opening the file never
runs anything a contributor typed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any, Final

from panicsafe.logbook.evidence.bundle import Bundle, BundleEntry, as_bundle
from panicsafe.logbook.evidence.pdf import KIND_LABELS, SOURCE_LABELS, local_time

COLUMNS: Final = (
    "N°",
    "Date et heure (Paris)",
    "Date et heure (UTC)",
    "Enregistrée (UTC)",
    "Saisie a posteriori",
    "Nature",
    "Mode",
    "Source",
    "Auteur",
    "Identifiant de l'auteur",
    "Cellule",
    "Résumé",
    "Corps",
    "Corrige l'entrée n°",
    "Liens",
    "Identifiant d'événement",
    "Sel",
    "Engagement du corps",
    "Empreinte de l'entrée",
    "Empreinte de chaînage",
)
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _row(e: BundleEntry) -> list[str]:
    body = e["body"]
    values = [
        str(e["seq"]),
        local_time(e["occurred_at"]),
        e["occurred_at"],
        e["recorded_at"],
        "oui" if e["rekeyed"] else "non",
        KIND_LABELS.get(e["kind"], e["kind"]),
        "exercice" if e["mode"] == "exercise" else "réel",
        SOURCE_LABELS.get(e["source"], e["source"]),
        e["author"]["label"],
        e["author"]["id"] or "",
        e["cell"] or "",
        e["summary"],
        "(illisible : déchiffrement impossible)" if body is None else body,
        "" if e["corrects"] is None else str(e["corrects"]),
        " ; ".join(f"{k}={v}" for k, v in sorted(e["links"].items())),
        e["event_id"] or "",
        e["salt"],
        e["body_commitment"],
        e["leaf_hash"],
        e["chain_hash"],
    ]
    return [_cell(v) for v in values]


def render_csv(bundle: Bundle | Mapping[str, Any]) -> bytes:
    """One row per entry, with its hashes; the signed checkpoint is in the JSON bundle and the PDF."""
    b = as_bundle(bundle)
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(_row(e) for e in b.entries)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")
