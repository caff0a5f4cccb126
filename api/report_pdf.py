"""The printable A4 report of a share's verification (GET /s/{id}/report.pdf): what the share
page shows (api.share_report), with the page's QR code and verification code, so that a
printed copy leads back to the live verification.

The text is set in Noto Sans CJK SC (Debian's fonts-noto-cjk, the face that
ledger.signatures.pdf takes out of the collection). reportlab embeds TrueType outlines only
and Noto CJK's are PostScript (CFF), so each report gets the font cut down to the characters
it uses (fontTools' subsetter) and its outlines turned quadratic (cu2qu), which takes a
fraction of a second. Without the font the report falls back to reportlab's built-in STSong
(Adobe's CJK font, not embedded: a reader shows it with its own).
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from api.share_report import ShareReport
from wallet.qr import qr_png

__all__ = ["report_pdf"]

_FALLBACK_FONT = "STSong-Light"
_lock = threading.Lock()  # reportlab's font registry is one dictionary for the process
_GREEN, _RED = colors.HexColor("#1e7d32"), colors.HexColor("#b71c1c")


def _subset_font(characters: str, name: str) -> io.BytesIO | None:
    """Noto Sans CJK SC cut down to `characters`, with TrueType outlines, named `name` (reportlab
    keeps the first font of a name for good: each cut needs its own); None without the font."""
    from fontTools import subset
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont, newTable

    from ledger.signatures.pdf import cjk_font

    path = cjk_font()
    if path is None:
        return None
    font = TTFont(str(path))
    options = subset.Options()
    options.layout_features, options.hinting, options.notdef_outline = [], False, True
    options.name_IDs = ["*"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=characters)
    subsetter.subset(font)
    glyphs, order = font.getGlyphSet(), font.getGlyphOrder()
    glyf = newTable("glyf")
    glyf.glyphOrder, glyf.glyphs = order, {}
    for glyph in order:
        pen = TTGlyphPen(glyphs)
        glyphs[glyph].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))  # cubic -> quadratic
        glyf.glyphs[glyph] = pen.glyph()
    for table in ("CFF ", "VORG"):
        if table in font:
            del font[table]
    font["glyf"], font["loca"] = glyf, newTable("loca")
    maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for attr in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                 "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    font["maxp"] = maxp
    font["head"].glyphDataFormat = 0
    font["post"].formatType, font["post"].extraNames, font["post"].mapping = 2.0, [], {}
    font.sfntVersion = "\x00\x01\x00\x00"
    for record in list(font["name"].names):
        if record.nameID == 6:  # the PostScript name, which reportlab knows a face by
            font["name"].setName(name, 6, record.platformID, record.platEncID, record.langID)
    out = io.BytesIO()
    font.save(out)
    out.seek(0)
    return out


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=font, fontSize=9, leading=12.5, wordWrap="CJK")
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=10,
                                textColor=colors.HexColor("#444")),
        "title": ParagraphStyle("title", parent=base, fontSize=15, leading=20),
        "h2": ParagraphStyle("h2", parent=base, fontSize=11, leading=15, spaceBefore=6, spaceAfter=2),
        "verdict": ParagraphStyle("verdict", parent=base, fontSize=14, leading=19, textColor=colors.white),
        "code": ParagraphStyle("code", parent=base, fontSize=13, leading=17),
        "mono": ParagraphStyle("mono", parent=base, fontName="Courier", fontSize=7, leading=9),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _grid(rows: list[list[Any]], widths: list[float], *, header: bool = False) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#c8ced6")),
             ("VALIGN", (0, 0), (-1, -1), "TOP"),
             ("BACKGROUND", (0, 0), (0 if not header else -1, -1 if not header else 0),
              colors.HexColor("#f1f4f8"))]
    table.setStyle(TableStyle(style))
    return table


def _story(report: ShareReport, s: dict[str, ParagraphStyle], qr: bytes | None) -> list[Any]:
    width = A4[0] - 30 * mm
    story: list[Any] = []
    title = [_p("电子凭证在线验证报告", s["title"]),
             _p("Online verification report of a credential", s["base"])]
    if qr is not None:
        head = Table([[title, Image(io.BytesIO(qr), width=32 * mm, height=32 * mm)]],
                     colWidths=[width - 36 * mm, 36 * mm])
        head.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
        story.append(head)
    else:
        story += title
    verdict = Table([[_p(f"{report.verdict_zh} · {report.verdict_en}", s["verdict"])],
                     *[[_p(f"{r['zh']}\n{r['en']}", ParagraphStyle("r", parent=s["base"],
                                                                    textColor=colors.white))]
                       for r in report.reasons]], colWidths=[width])
    verdict.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), _GREEN if report.valid else _RED)]))
    story += [Spacer(1, 3 * mm), verdict, Spacer(1, 3 * mm)]

    if report.status:
        st = report.status
        story.append(_grid([[_p("状态 Status", s["base"]), _p(f"{st['zh']} {st['en']}", s["base"])],
                            [_p("原因 Reason", s["base"]),
                             _p(f"{st['reason_zh']} {st['reason_en']}", s["base"])],
                            [_p("日期 Date", s["base"]), _p(f"{st['date']}  ({st['time']})", s["base"])]],
                           [40 * mm, width - 40 * mm]))
        story.append(Spacer(1, 3 * mm))
    facts = [("凭证类型 Credential type", report.credential_type or "—"),
             ("签发机构 Issuer", "\n".join(x for x in (report.issuer_zh, report.issuer_en) if x) or "—"),
             ("签发时间 Issued", report.issued_at or "—"), ("存证时间 Anchored", report.anchored_at or "—"),
             ("核验时间 Checked", report.checked_at)]
    if report.share.get("expires_at"):
        facts.append(("链接有效期至 Link expires", report.share["expires_at"]))
    rows = [[_p(k, s["base"]), _p(v, s["base"])] for k, v in facts]
    if report.share.get("verify_code"):
        rows.append([_p("验证码 Verification code", s["base"]),
                     [_p(report.share["verify_code"], s["code"]),
                      _p(f"在 {report.share['verify_url']} 输入 · type it at {report.share['verify_url']}",
                         s["small"])]])
    if report.share.get("url"):
        rows.append([_p("核验链接 Verification link", s["base"]), _p(report.share["url"], s["mono"])])
    story.append(_grid(rows, [45 * mm, width - 45 * mm]))

    story.append(_p("出示的信息 Disclosed claims", s["h2"]))
    claims = [[_p(f"{c['zh']} {c['en']}", s["base"]), _p(c["value"], s["base"])] for c in report.claims]
    if claims:
        story.append(_grid(claims, [45 * mm, width - 45 * mm]))
    elif not report.courses:
        story.append(_p("— 无 None", s["base"]))
    if report.courses:
        story.append(_p("课程成绩 Courses", s["h2"]))
        n = len(report.course_columns)
        header = [_p(f"{c['zh']}\n{c['en']}", s["small"]) for c in report.course_columns]
        story.append(_grid([header, *[[_p(cell, s["base"]) for cell in line] for line in report.courses]],
                           [width / n] * n, header=True))
    if report.evidence:
        ev = report.evidence
        story.append(_p("区块链存证 Evidence on the ledger", s["h2"]))
        story.append(_grid([[_p(k, s["base"]), _p(v or "—", s[style])] for k, v, style in (
            ("存证交易 Transaction", ev["tx_hash"], "mono"),
            ("区块 Block", f"{ev['block_number']}  {ev['block_time']}", "base"),
            ("存证合约 Registry contract", ev["contract"], "mono"),
            ("链标识 Chain ID", ev["chain_id"], "base"), ("默克尔根 Merkle root", ev["root"], "mono"),
            ("凭证叶哈希 Credential leaf", ev["leaf"], "mono"))],
            [45 * mm, width - 45 * mm]))
    if report.checks:
        story.append(_p("核验项目 Checks", s["h2"]))
        story.append(_grid([[_p(f"{c['zh']} {c['en']}", s["base"]), _p(c["word"], s["base"]),
                             _p("" if c["outcome"] == "passed" else f"{c['message_zh']}\n{c['message_en']}",
                                s["small"])] for c in report.checks],
                           [45 * mm, 28 * mm, width - 73 * mm]))
    if report.commands:
        story.append(_p("自行核验 Check it yourself", s["h2"]))
        for command in report.commands:
            story += [_p(f"{command['zh']} · {command['en']}", s["small"]), _p(command["command"], s["mono"]),
                      Spacer(1, 1.5 * mm)]
    story += [Spacer(1, 4 * mm), _p("核验依据区块链上的记录，不依赖任何单一机构的数据库。Checked against the "
                                    "ledger, not against any one organisation's database.", s["small"])]
    return story


def _characters(story: Iterable[Any]) -> str:
    """Every character the story's paragraphs set (the font is cut down to them)."""
    out: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, Paragraph):
            out.update(item.text)
        elif isinstance(item, Table):
            for row in item._cellvalues:
                for cell in row:
                    for part in cell if isinstance(cell, list) else [cell]:
                        walk(part)
    for item in story:
        walk(item)
    return "".join(sorted(out)) + "".join(chr(c) for c in range(0x20, 0x7f))


def report_pdf(report: ShareReport) -> bytes:
    """The report as an A4 PDF, with the share page's URL as a QR code when the share is live."""
    live = report.share.get("live") and report.share.get("url")
    qr = qr_png(report.share["url"], box_size=8) if live else None
    probe = _story(report, _styles("Helvetica"), qr)  # which characters it needs
    name = f"NotoSansCJKsc-{uuid.uuid4().hex[:12]}"
    font_file = _subset_font(_characters(probe), name)
    name = name if font_file is not None else _FALLBACK_FONT
    out = io.BytesIO()
    with _lock:
        try:
            if font_file is not None:
                from reportlab.pdfbase.ttfonts import TTFont

                pdfmetrics.registerFont(TTFont(name, font_file))
            else:
                from reportlab.pdfbase.cidfonts import UnicodeCIDFont

                pdfmetrics.registerFont(UnicodeCIDFont(_FALLBACK_FONT))
            doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                                    topMargin=14 * mm, bottomMargin=14 * mm,
                                    title=f"{report.verdict_zh} {report.verdict_en} — eduledger",
                                    author="eduledger",
                                    subject="电子凭证在线验证报告 Online verification report")
            doc.build(_story(report, _styles(name), qr))
        finally:
            if font_file is not None:  # one font a report: do not keep them all
                pdfmetrics._fonts.pop(name, None)
                pdfmetrics._dynFaceNames.pop(name, None)
    return out.getvalue()
