"""Drawing on slides (python-pptx): boxes in inches, titled slides with their sources, text, pictures, tables."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from pptx.dml.color import RGBColor
from pptx.enum.shapes import MSO_SHAPE
from pptx.enum.text import MSO_ANCHOR, PP_ALIGN
from pptx.oxml.ns import qn
from pptx.slide import Slide
from pptx.util import Inches, Pt

NAVY, GREY, LIGHT = RGBColor(0x1F, 0x4E, 0x79), RGBColor(0x59, 0x59, 0x59), RGBColor(0xDD, 0xE7, 0xF1)
WHITE, PALE = RGBColor(0xFF, 0xFF, 0xFF), RGBColor(0xF4, 0xF7, 0xFB)
SLIDE_WIDTH, SLIDE_HEIGHT = 13.333, 7.5  # inches (16:9)


@dataclass(frozen=True)
class Box:
    """A rectangle on a slide, in inches."""

    left: float
    top: float
    width: float
    height: float


BODY = Box(0.5, 1.3, 12.33, 5.65)
LEFT = Box(0.5, 1.3, 6.0, 5.65)
RIGHT = Box(6.83, 1.3, 6.0, 5.65)


def inches(box: Box) -> tuple[int, int, int, int]:
    return Inches(box.left), Inches(box.top), Inches(box.width), Inches(box.height)


def new_slide(deck: Any, title: str, sources: Sequence[str]) -> Slide:
    """A blank slide with a title bar and a footer naming the files its numbers come from."""
    slide = deck.slides.add_slide(deck.slide_layouts[6])
    bar = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, 0, 0, deck.slide_width, Inches(1.0))
    bar.fill.solid()
    bar.fill.fore_color.rgb = NAVY
    bar.line.fill.background()
    frame = bar.text_frame
    frame.margin_left = Inches(0.5)
    frame.vertical_anchor = MSO_ANCHOR.MIDDLE
    write_run(frame.paragraphs[0], title, 28, bold=True, color=WHITE)
    frame.paragraphs[0].alignment = PP_ALIGN.LEFT
    number = len(deck.slides)
    footer = f"Source: {', '.join(sources)}" if sources else ""
    add_text(slide, Box(0.5, 7.02, 11.3, 0.35), [footer], size=10, bullets=False, color=GREY)
    add_text(slide, Box(12.1, 7.02, 0.75, 0.35), [str(number)], size=10, bullets=False, color=GREY,
             align=PP_ALIGN.RIGHT)
    return slide


def write_run(paragraph: Any, text: str, size: float, bold: bool = False, color: RGBColor | None = None) -> None:
    run = paragraph.add_run()
    run.text = text
    run.font.size = Pt(size)
    run.font.bold = bold
    if color is not None:
        run.font.color.rgb = color


def bullet(paragraph: Any, size: float) -> None:
    """A real bullet with a hanging indent, so wrapped lines align with the text."""
    properties = paragraph._p.get_or_add_pPr()
    properties.set("marL", str(Inches(0.28)))
    properties.set("indent", str(-Inches(0.28)))
    properties.append(properties.makeelement(qn("a:buChar"), {"char": "•"}))
    paragraph.space_after = Pt(size * 0.6)


def add_text(slide: Slide, box: Box, lines: Sequence[str | tuple[str, str]], size: float = 18,
             bullets: bool = True, color: RGBColor | None = None, align: Any = None) -> None:
    """Paragraphs in a box; a (label, text) pair is written with its label in bold."""
    frame = slide.shapes.add_textbox(*inches(box)).text_frame
    frame.word_wrap = True
    for i, line in enumerate(lines):
        paragraph = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
        label, text = line if isinstance(line, tuple) else ("", line)
        if label:
            write_run(paragraph, f"{label} ", size, bold=True, color=color)
        write_run(paragraph, text, size, color=color)
        if bullets:
            bullet(paragraph, size)
        if align is not None:
            paragraph.alignment = align


def add_picture(slide: Slide, path: Path, box: Box) -> None:
    """The image as large as the box allows, aspect ratio kept, centred in the box."""
    with Image.open(path) as image:
        width, height = image.size
    scale = min(box.width / width, box.height / height)
    shown = Box(box.left + (box.width - width * scale) / 2, box.top + (box.height - height * scale) / 2,
                width * scale, height * scale)
    slide.shapes.add_picture(str(path), *inches(shown))


def add_table(slide: Slide, frame: pd.DataFrame, box: Box, size: float = 12,
              widths: Sequence[float] | None = None, bold_rows: Sequence[int] = ()) -> float:
    """A table with a header row; `widths` in inches (default: equal), `bold_rows` counted from 0 after the header.

    Returns where the table ends (inches from the top) if no cell wraps; wrapped cells make it taller.
    """
    rows, columns = len(frame) + 1, len(frame.columns)
    row_height = size * 2.1 / 72
    shape = slide.shapes.add_table(rows, columns, *inches(Box(box.left, box.top, box.width, row_height * rows)))
    table = shape.table
    for j, width in enumerate(widths or [box.width / columns] * columns):
        table.columns[j].width = Inches(width)
    for i in range(rows):
        table.rows[i].height = Inches(row_height)
    for j, name in enumerate(frame.columns):
        fill_cell(table.cell(0, j), str(name), size, bold=True)
    for i, row in enumerate(frame.itertuples(index=False)):
        for j, value in enumerate(row):
            fill_cell(table.cell(i + 1, j), str(value), size, bold=i in bold_rows)
    return box.top + row_height * rows


def fill_cell(cell: Any, text: str, size: float, bold: bool) -> None:
    cell.text_frame.word_wrap = True
    cell.margin_top = cell.margin_bottom = Inches(0.04)
    write_run(cell.text_frame.paragraphs[0], text, size, bold=bold)


def add_box(slide: Slide, box: Box, title: str, detail: str, fill: RGBColor = LIGHT) -> None:
    """A labelled rectangle of the architecture diagram."""
    shape = slide.shapes.add_shape(MSO_SHAPE.ROUNDED_RECTANGLE, *inches(box))
    shape.fill.solid()
    shape.fill.fore_color.rgb = fill
    shape.line.color.rgb = NAVY
    frame = shape.text_frame
    frame.word_wrap = True
    frame.vertical_anchor = MSO_ANCHOR.MIDDLE
    write_run(frame.paragraphs[0], title, 15, bold=True, color=NAVY)
    detail_paragraph = frame.add_paragraph()
    write_run(detail_paragraph, detail, 11, color=GREY)
    for paragraph in frame.paragraphs:
        paragraph.alignment = PP_ALIGN.CENTER


def add_arrow(slide: Slide, box: Box, shape_type: Any = MSO_SHAPE.RIGHT_ARROW) -> None:
    arrow = slide.shapes.add_shape(shape_type, *inches(box))
    arrow.fill.solid()
    arrow.fill.fore_color.rgb = NAVY
    arrow.line.fill.background()


def pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"
