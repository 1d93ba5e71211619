"""Warm napari's glyph cache while the window is idle, one character per turn of the event loop.

napari draws canvas text (the title overlay, colour bar ticks, scale bar, grid titles) with signed-distance
glyphs that it renders on the CPU the first time a character is drawn, in the paint that needs it: 30–120 ms a
character on 2 cores, so the first title and colour bar after a prediction added 0.1–0.2 s to that paint
(measured in the stall benchmark's profile).  Rendering the characters the plugin's texts use beforehand, in
:class:`~._gui_steps.GuiSteps` steps of one character, moves that work to idle turns of the event loop.
"""

from __future__ import annotations

import string

#: The characters of the plugin's canvas texts (gene names, numbers, titles, units, legends).
CHARS = string.ascii_uppercase + string.digits + string.ascii_lowercase + " ·–—()[]_.,:;-+%/⚠µ×=<>'"
#: Characters rendered per step: one (30–120 ms each on 2 quiet cores, measured; three made 0.25–0.4 s steps).
PER_STEP = 1


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
