"""Warm napari's glyph cache while the window is idle, a few characters per turn of the event loop.

napari draws canvas text (the title overlay, colour bar ticks, scale bar, grid titles) with signed-distance
glyphs that it renders on the CPU the first time a character is drawn, in the paint that needs it: 5–10 ms a
character on 2 cores, so the first title and colour bar after a prediction added 0.1–0.2 s to that paint
(measured in the stall benchmark's profile).  Rendering the characters the plugin's texts use beforehand, in
:class:`~._gui_steps.GuiSteps` steps of a few characters, moves that work to idle turns of the event loop.
"""

from __future__ import annotations

import string

#: The characters of the plugin's canvas texts (gene names, numbers, titles, units, legends).
CHARS = string.ascii_uppercase + string.digits + string.ascii_lowercase + " ·–—()[]_.,:;-+%/⚠µ×=<>'"
#: Characters rendered per step (one step stays well under a frame).
PER_STEP = 3


def canvas_font(viewer):
    """The font napari's canvas text is drawn with (its glyph cache), or ``None`` where napari has none."""
    try:
        canvas = viewer.window._qt_viewer.canvas
        info = canvas.font_info
        info = info() if callable(info) else info
        return info.font_manager.get_font(info.face)
    except Exception:  # noqa: BLE001 - a napari without this font manager: nothing to warm
        return None


def warm_glyphs(viewer, steps, chars: str = CHARS) -> int:
    """Queue steps rendering ``chars`` into the canvas font's glyph cache; returns the number of steps."""
    font = canvas_font(viewer)
    if font is None:
        return 0
    chunks = [chars[i : i + PER_STEP] for i in range(0, len(chars), PER_STEP)]
    steps.add(*(lambda chunk=chunk: [font[c] for c in chunk] for chunk in chunks))
    return len(chunks)
