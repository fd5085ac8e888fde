"""The printable main courante (PDF) and the spreadsheet export (CSV) of a bundle."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pypdf
import pytest
from evidence_samples import SampleLog, sample_log

from panicsafe.logbook.evidence import pdf as pdf_module
from panicsafe.logbook.evidence.bundle import bundle_json
from panicsafe.logbook.evidence.csvexport import COLUMNS, render_csv
from panicsafe.logbook.evidence.pdf import PdfFontError, render_pdf, verification_string


@pytest.fixture(scope="module")
def exercise() -> SampleLog:
    return sample_log(40, mode="exercise", checkpoint_every=10, inclusion_proofs=False)


@pytest.fixture(scope="module")
def real() -> SampleLog:
    return sample_log(12, mode="real", checkpoint_every=0, inclusion_proofs=False)


def pages(content: bytes) -> list[str]:
    assert content.startswith(b"%PDF-")
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages]


def test_an_exercise_reads_in_french_with_exercice_on_every_page(exercise: SampleLog) -> None:
    texts = pages(render_pdf(exercise.bundle, verification_url=None))
    assert len(texts) >= 3
    for number, text in enumerate(texts, start=1):
        assert "EXERCICE" in text
        assert f"Page {number} / {len(texts)}" in text
    whole = "\n".join(texts)
    b = exercise.bundle
    for expected in (
        "Main courante",
        "Rançongiciel — CH de Démo « Sainte-Anne »",
        b.tenant,
        b.crisis.id,
        "Décision",
        "Communication",
        "Système",
        "Fait",
        "Résumé : Décision : basculer les urgences en mode dégradé",
        "Corps : Décidé en cellule restreinte.",
        "Françoise Nguyễn",
        "saisie a posteriori",
        "Corrige l'entrée n° 8",
        "Point de contrôle signé",
        b.checkpoint.root_hash,
        b.checkpoint.chain_head,
        b.public_key.key,
        "version 3",
        "panicsafe-checkpoint:v1;",
    ):
        assert expected in whole, expected
    # each entry by its number and the start of its leaf hash
    for entry in b.entries:
        assert f"N° {entry['seq']} — " in whole
        assert entry["leaf_hash"][:24] in whole
    # times are shown at Paris time: 13:00:37 UTC is 14:00:37 in November
    assert "23/11/2026 14:00:37 +01:00" in whole
    assert "\ufffd" in whole  # a control character typed in a body is shown, not passed on


def test_a_real_crisis_has_no_exercise_banner(real: SampleLog) -> None:
    texts = pages(render_pdf(real.bundle, verification_url="https://bunker.example/verifier?c=1"))
    assert all("EXERCICE" not in text for text in texts)
    whole = "\n".join(texts)
    assert "Crise réelle" in whole
    assert "https://bunker.example/verifier?c=1" in whole
    assert "panicsafe-checkpoint:v1" not in whole


def test_the_pdf_reads_a_bundle_from_its_json_too(real: SampleLog) -> None:
    from_json = pages(render_pdf(json.loads(bundle_json(real.bundle)), verification_url=None))
    assert real.bundle.checkpoint.root_hash in "\n".join(from_json)


def test_an_unreadable_body_and_long_words_are_printed(real: SampleLog) -> None:
    value = json.loads(bundle_json(real.bundle))
    value["entries"][2]["body"] = None
    value["entries"][3]["summary"] = "x" * 400  # longer than a line: cut, not lost
    whole = "\n".join(pages(render_pdf(value)))
    assert "Corps : illisible : le service n'a pas pu le déchiffrer" in whole
    assert whole.replace("\n", "").count("x" * 400) == 1


def test_the_verification_string_carries_the_signed_checkpoint(real: SampleLog) -> None:
    b = real.bundle
    cp = b.checkpoint
    assert verification_string(b) == (
        f"panicsafe-checkpoint:v1;{b.tenant};{b.crisis.id};{cp.tree_size};{cp.root_hash};{cp.signature}"
    )


def test_missing_fonts_say_what_to_install(real: SampleLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_module, "FONT_DIRS", (Path("/nonexistent/fonts"),))
    with pytest.raises(PdfFontError, match="fonts-dejavu-core"):
        render_pdf(real.bundle)


def test_csv_for_a_spreadsheet(exercise: SampleLog) -> None:
    content = render_csv(exercise.bundle)
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content[3:].decode("utf-8"), newline=""), delimiter=";"))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 1 + len(exercise.bundle.entries)
    by_name = [dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]]
    for entry, row in zip(exercise.bundle.entries, by_name, strict=True):
        assert row["N°"] == str(entry["seq"])
        assert row["Empreinte de l'entrée"] == entry["leaf_hash"]
        assert row["Empreinte de chaînage"] == entry["chain_hash"]
        assert row["Date et heure (UTC)"] == entry["occurred_at"]
        assert row["Mode"] == "exercice"
        assert row["Corps"] == entry["body"]  # line breaks and ; survive the quoting
        if entry["summary"].startswith("="):
            assert row["Résumé"] == "'" + entry["summary"]
        else:
            assert row["Résumé"] == entry["summary"]
    assert {row["Nature"] for row in by_name} == {"Fait", "Décision", "Action", "Communication", "Système"}
    assert any(row["Saisie a posteriori"] == "oui" for row in by_name)
    assert any(row["Corrige l'entrée n°"] == "8" for row in by_name)
    assert "Françoise Nguyễn" in content.decode("utf-8")
