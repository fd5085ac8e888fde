"""The printable main courante: a French PDF of a bundle, for the crisis cell's binder and the file of evidence.

Every entry with its number, local time (Europe/Paris; the hashed times are UTC), nature, source,
author, cell, summary, body, correction and short leaf hash; then the signed checkpoint with a QR code
to check it. An exercise carries "EXERCICE" on every page. The PDF is a reading copy: the proof is
the JSON bundle and `python -m panicsafe.logbook.verify`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import TTFFont

from panicsafe.logbook.evidence.bundle import Bundle, BundleEntry, as_bundle
from panicsafe.logbook.evidence.leaf import parse_time

FONT_DIRS: Final = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu: fonts-dejavu-core
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)
FONT_FILES: Final = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "mono": "DejaVuSansMono.ttf"}
PARIS: Final = ZoneInfo("Europe/Paris")
KIND_LABELS: Final = {
    "fact": "Fait",
    "decision": "Décision",
    "action": "Action",
    "communication": "Communication",
    "system": "Système",
}
MODE_LABELS: Final = {"real": "Crise réelle", "exercise": "EXERCICE"}
# Where an entry came from: "manual" (typed in the main courante) or the service that wrote it.
SOURCE_LABELS: Final = {
    "manual": "Saisie manuelle",
    "gateway": "Plateforme",
    "chat": "Messagerie",
    "video": "Visioconférence",
    "logbook": "Main courante",
    "docs": "Documents",
    "sara": "Moteur d'exercice",
}
EXERCISE_BANNER: Final = "EXERCICE — EXERCICE — EXERCICE — ceci n'est pas une crise réelle"
# Replaced by the page count at the end; as wide as a six-digit number, so that it always fits.
PAGES_ALIAS: Final = "{pages}"
LINE: Final = 4.6  # mm, body text at 9 pt
BLACK: Final = (0, 0, 0)
GREY: Final = (90, 90, 90)
LATE: Final = (160, 60, 0)  # re-keyed entries

# A run of text: (font family, style, size in points, colour), text; a piece of a line: its run's style, text, width.
Style = tuple[str, str, float, tuple[int, int, int]]
Run = tuple[Style, str]
Piece = tuple[Style, str, float]


class PdfFontError(RuntimeError):
    """The DejaVu fonts the PDF embeds are not installed."""


def find_fonts() -> dict[str, Path]:
    """The DejaVu Sans (regular, bold) and DejaVu Sans Mono files, from the first folder that has them all."""
    for folder in FONT_DIRS:
        paths = {style: folder / name for style, name in FONT_FILES.items()}
        if all(path.is_file() for path in paths.values()):
            return paths
    searched = ", ".join(str(folder) for folder in FONT_DIRS)
    raise PdfFontError(
        f"the DejaVu fonts ({', '.join(FONT_FILES.values())}) are not in {searched}: "
        "install the Debian package fonts-dejavu-core (scripts/setup.sh does)"
    )


def _unprintable(codepoints: set[int]) -> re.Pattern[str]:
    """Any character but a line feed and those the fonts draw (their C0 controls and separators excepted)."""
    drawn = [0x0A, *(c for c in codepoints if c >= 0x20 and c != 0x7F and c not in (0x2028, 0x2029))]
    ranges: list[tuple[int, int]] = []
    for code in sorted(drawn):
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    allowed = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[^{allowed}]")


def local_time(timestamp: str) -> str:
    """`23/11/2026 15:02:03 +01:00` for a logbook UTC timestamp (shown as it is if it is not one)."""
    try:
        moment = parse_time(timestamp).astimezone(PARIS)
    except ValueError:
        return timestamp
    offset = moment.strftime("%z")
    return f"{moment:%d/%m/%Y %H:%M:%S} {offset[:3]}:{offset[3:]}"


def _qr_png(data: str) -> io.BytesIO:
    buffer = io.BytesIO()
    segno.make(data, error="m", micro=False).save(buffer, kind="png", scale=4, border=2)
    buffer.seek(0)
    return buffer


def verification_string(bundle: Bundle) -> str:
    """What the QR code carries when there is no verification address: the signed checkpoint, compactly."""
    cp = bundle.checkpoint
    return f"panicsafe-checkpoint:v1;{bundle.tenant};{bundle.crisis.id};{cp.tree_size};{cp.root_hash};{cp.signature}"


class _MainCourante(FPDF):
    def __init__(self, bundle: Bundle) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.bundle = bundle
        self.exercise = bundle.crisis.mode == "exercise"
        fonts = find_fonts()
        self.add_font("DejaVu", "", fonts[""])
        self.add_font("DejaVu", "B", fonts["B"])
        self.add_font("DejaVuMono", "", fonts["mono"])
        # Shown as U+FFFD: what the fonts lack (emoji...), control characters; separators become line breaks.
        regular, bold = self.fonts.get("dejavu"), self.fonts.get("dejavuB")
        if not isinstance(regular, TTFFont) or not isinstance(bold, TTFFont):
            raise PdfFontError("the DejaVu fonts could not be loaded")
        self.unprintable = _unprintable(set(regular.cmap) & set(bold.cmap))
        self.set_margins(15, 18, 15)
        self.set_auto_page_break(auto=True, margin=18)
        self.set_title(f"Main courante — {bundle.crisis.title}")
        self.set_author("PanicSAFE")
        self.set_creator("PanicSAFE logbook")
        self.alias_nb_pages(PAGES_ALIAS)

    def printable(self, text: str) -> str:
        text = text.replace("\t", "    ")
        return self.unprintable.sub(lambda m: "\n" if m.group() in "\u2028\u2029" else "\ufffd", text)

    def header(self) -> None:
        if self.exercise:
            self.set_xy(0, 0)
            self.set_fill_color(200, 0, 0)
            self.set_text_color(255, 255, 255)
            self.set_font("DejaVu", "B", 11)
            self.cell(self.w, 9, EXERCISE_BANNER, align="C", fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_text_color(0, 0, 0)
        self.set_y(11 if self.exercise else 8)
        self.set_font("DejaVu", "", 7.5)
        self.set_text_color(90, 90, 90)
        self.cell(
            0, 4, f"Main courante — {self.printable(self.bundle.crisis.title)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.set_text_color(0, 0, 0)
        self.set_y(18)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font("DejaVu", "", 7.5)
        self.set_text_color(90, 90, 90)
        root = self.bundle.checkpoint.root_hash
        self.cell(0, 4, f"Racine signée {root[:16]}…", new_x=XPos.LEFT)
        self.cell(0, 4, f"Page {self.page_no()} / {PAGES_ALIAS}", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if self.exercise:
            self.set_font("DejaVu", "B", 9)
            self.set_text_color(200, 0, 0)
            self.cell(0, 5, "EXERCICE", align="C")
        self.set_text_color(0, 0, 0)

    # A small line layout of our own: fpdf2's `write` and `multi_cell` measure every line again for each
    # character added, which made 10,000 entries take a minute; this measures each word once and places
    # lines with `text`.

    def paragraph(self, runs: list[Run], line_height: float = LINE) -> None:
        """Runs of styled text, wrapped to the page width, from the current position; pages break as needed."""
        for line in self.layout(runs, self.epw):
            if self.get_y() + line_height > self.page_break_trigger:
                self.add_page()
            top, x = self.get_y(), self.l_margin
            for (family, style, size, color), text, width in line:
                self.set_font(family, style, size)
                self.set_text_color(*color)
                self.text(x, top + 0.5 * line_height + 0.3 * size / self.k, text)
                x += width
            self.set_y(top + line_height)
        self.set_text_color(*BLACK)

    def layout(self, runs: list[Run], width: float) -> list[list[Piece]]:
        """The lines of the runs: greedy word wrap, words longer than a line cut where they must be."""
        lines: list[list[Piece]] = []
        line: list[Piece] = []
        used = 0.0
        for style, text in runs:
            family, font_style, size, _ = style
            font = self.fonts[family.lower() + font_style]  # fpdf2's keys: "dejavu", "dejavuB", "dejavumono"
            assert isinstance(font, TTFFont)
            cw, unit = font.cw, size * 0.001 / self.k
            space = cw[32] * unit
            for number, part in enumerate(self.printable(text).split("\n")):
                if number:
                    lines.append(line)
                    line, used = [], 0.0
                for index, word in enumerate(part.split(" ")):
                    gap = " " if index else ""
                    word_width = sum(cw[ord(c)] for c in word) * unit
                    if used and used + (space if gap else 0.0) + word_width > width:
                        lines.append(line)
                        line, used, gap = [], 0.0, ""
                    while word_width > width - used:  # longer than what is left of an empty line: cut it
                        fits, total = 0, 0.0
                        while fits < len(word) - 1 and total + cw[ord(word[fits])] * unit <= width - used:
                            total += cw[ord(word[fits])] * unit
                            fits += 1
                        line.append((style, gap + word[: max(fits, 1)], total))
                        lines.append(line)
                        line, used, gap = [], 0.0, ""
                        word = word[max(fits, 1) :]
                        word_width = sum(cw[ord(c)] for c in word) * unit
                    piece_width = (space if gap else 0.0) + word_width
                    if line and line[-1][0] == style:
                        line[-1] = (style, line[-1][1] + gap + word, line[-1][2] + piece_width)
                    else:
                        line.append((style, gap + word, piece_width))
                    used += piece_width
        lines.append(line)
        return lines

    def labelled(self, label: str, value: str, *, mono: bool = False, size: float = 9) -> None:
        """`label : value` as a paragraph, the label in bold."""
        value_style = ("DejaVuMono", "", size - 1, BLACK) if mono else ("DejaVu", "", size, BLACK)
        self.paragraph([(("DejaVu", "B", size, BLACK), f"{label} : "), (value_style, value)])

    def cover(self) -> None:
        b = self.bundle
        self.set_font("DejaVu", "B", 20)
        self.cell(0, 11, "Main courante", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("DejaVu", "B", 13)
        self.multi_cell(0, 6.5, self.printable(b.crisis.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)
        self.labelled("Nature", MODE_LABELS.get(b.crisis.mode, b.crisis.mode))
        self.labelled("Organisation (locataire)", b.tenant, mono=True)
        self.labelled("Crise", b.crisis.id, mono=True)
        self.labelled("Exportée le", local_time(b.exported_at))
        self.labelled("Entrées", f"{len(b.entries)} (n° 1 à {len(b.entries)})" if b.entries else "aucune")
        self.set_font("DejaVu", "", 8)
        self.multi_cell(
            0,
            4,
            "Heures affichées à l'heure de Paris ; les heures UTC exactes, les corps chiffrés déchiffrés et les "
            "empreintes complètes sont dans le fichier de preuve JSON, vérifiable hors ligne avec "
            "« python -m panicsafe.logbook.verify ». Une entrée n'est jamais modifiée : une correction est "
            "une nouvelle entrée qui désigne celle qu'elle corrige.",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.ln(3)

    def entry(self, e: BundleEntry) -> None:
        if self.get_y() + 4 * LINE > self.page_break_trigger:
            self.add_page()
        self.set_draw_color(170, 170, 170)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.set_y(self.get_y() + 1)
        kind = KIND_LABELS.get(e["kind"], e["kind"])
        head: list[Run] = [(("DejaVu", "B", 9.5, BLACK), f"N° {e['seq']} — {local_time(e['occurred_at'])} — {kind}")]
        if e["rekeyed"]:
            late = f" — saisie a posteriori (enregistrée le {local_time(e['recorded_at'])})"
            head.append((("DejaVu", "B", 9.5, LATE), late))
        self.paragraph(head, LINE + 0.4)
        author = e["author"]["label"] + ("" if e["author"]["id"] is None else f" ({e['author']['id'][:8]})")
        source = SOURCE_LABELS.get(e["source"], e["source"])
        meta = f"Source : {source} · Auteur : {author} · Cellule : {e['cell'] or '—'}"
        self.paragraph([(("DejaVu", "", 8.5, BLACK), meta)])
        if e["corrects"] is not None:
            self.paragraph([(("DejaVu", "B", 9, BLACK), f"Corrige l'entrée n° {e['corrects']}")])
        self.labelled("Résumé", e["summary"])
        body = e["body"]
        if body is None:
            self.labelled("Corps", "illisible : le service n'a pas pu le déchiffrer (altéré ou clé détruite)")
        elif body:
            self.labelled("Corps", body)
        if e["links"]:
            self.labelled("Liens", ", ".join(f"{k} = {v}" for k, v in sorted(e["links"].items())), size=8)
        self.paragraph([(("DejaVuMono", "", 7, GREY), f"empreinte de l'entrée {e['leaf_hash'][:24]}…")], LINE - 0.6)

    def checkpoint(self, verification_url: str | None) -> None:
        b = self.bundle
        cp = b.checkpoint
        self.add_page()
        self.set_font("DejaVu", "B", 14)
        self.cell(0, 8, "Point de contrôle signé", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("DejaVu", "", 8.5)
        self.multi_cell(
            0,
            4.2,
            "La racine de l'arbre de Merkle (RFC 6962) et la tête de la chaîne de hachage couvrent chacune des "
            f"{cp.tree_size} entrées ; leur signature Ed25519 par la clé de l'organisation prouve que la main "
            "courante n'a pas été modifiée depuis.",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.ln(2)
        self.labelled("Nombre d'entrées (taille de l'arbre)", str(cp.tree_size))
        self.labelled("Signé le", f"{local_time(cp.issued_at)} ({cp.issued_at})")
        self.labelled("Racine de l'arbre", cp.root_hash, mono=True)
        self.labelled("Tête de chaîne", cp.chain_head, mono=True)
        self.labelled("Signature (Ed25519, base64)", cp.signature, mono=True)
        key = b.public_key
        self.labelled(f"Clé publique ({key.algorithm}, version {key.version})", key.key, mono=True)
        if b.checkpoints:
            self.labelled(
                "Points de contrôle antérieurs",
                f"{len(b.checkpoints)}, chacun avec sa preuve de cohérence (dans le fichier de preuve)",
            )
        self.ln(3)
        data = verification_url or verification_string(b)
        top = self.get_y()
        if self.will_page_break(55):
            self.add_page()
            top = self.get_y()
        self.image(_qr_png(data), x=self.l_margin, y=top, w=48, h=48)
        self.set_xy(self.l_margin + 53, top)
        self.set_font("DejaVu", "", 8)
        caption = (
            "Ce code QR renvoie à la page de vérification."
            if verification_url
            else "Ce code QR contient le point de contrôle signé (organisation ; crise ; taille ; racine ; "
            "signature), à comparer avec le fichier de preuve."
        )
        self.multi_cell(0, 4, caption, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_x(self.l_margin + 53)
        self.set_font("DejaVuMono", "", 6.5)
        self.multi_cell(0, 3.2, data, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_y(max(self.get_y(), top + 50))


def render_pdf(bundle: Bundle | Mapping[str, Any], *, verification_url: str | None = None) -> bytes:
    """The main courante of a bundle as a PDF (raises PdfFontError when the DejaVu fonts are missing)."""
    b = as_bundle(bundle)
    pdf = _MainCourante(b)
    pdf.add_page()
    pdf.cover()
    for entry in b.entries:
        pdf.entry(entry)
    pdf.checkpoint(verification_url)
    return bytes(pdf.output())
