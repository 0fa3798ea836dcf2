"""Colour phrases and recolouring in a perceptual space.

``parse_color`` finds the colour a prompt asks for: XKCD's survey names (what
people call a colour: "pink" is #ff81c0), then CSS names, hex codes, with the
modifiers light / dark / pale / pastel / neon / bright / deep / muted applied
in LCh when the whole phrase is not a name already. ``recolor`` moves an
object's hue, chroma and mean lightness to the target in CIELAB while keeping
each pixel's lightness offset from the object's mean (its shading, folds and
texture) and its relative saturation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from pixelsmith.errors import InvalidRequest

BASIC = {
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "grey",
    "gray",
    "violet",
    "magenta",
    "cyan",
    "teal",
    "turquoise",
    "navy",
    "maroon",
    "beige",
    "gold",
    "silver",
    "olive",
    "lime",
    "indigo",
    "lavender",
    "tan",
    "cream",
    "burgundy",
    "coral",
    "mint",
    "peach",
    "khaki",
    "crimson",
}
# modifier -> (lightness delta or target, chroma factor); applied in LCh
MODIFIERS: dict[str, tuple[float | str, float]] = {
    "light": (+18, 0.85),
    "pale": (+25, 0.55),
    "pastel": ("pastel", 0.5),
    "dark": (-22, 0.9),
    "deep": (-14, 1.15),
    "neon": ("neon", 1.6),
    "bright": (+6, 1.3),
    "vivid": (0, 1.35),
    "muted": (0, 0.55),
    "dusty": (-4, 0.5),
    "dull": (0, 0.55),
    "soft": (+8, 0.7),
    "hot": (0, 1.35),
    "rich": (-8, 1.2),
}
# Common names neither table has (hair and fashion colours).
EXTRA_NAMES = {
    "blonde": "#d8b46b",
    "blond": "#d8b46b",
    "platinum": "#e5e4e2",
    "platinumblonde": "#e8dcc0",
    "brunette": "#4b3621",
    "auburn": "#922724",
    "ginger": "#b9652f",
    "rosegold": "#b76e79",
    "champagne": "#f7e7ce",
    "denim": "#1560bd",
}
_WORD = re.compile(r"#[0-9a-f]{6}\b|#[0-9a-f]{3}\b|[a-z]+")


@dataclass(frozen=True)
class Colour:
    phrase: str  # the words of the prompt it came from
    rgb: tuple[int, int, int]

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)

    @property
    def lab(self) -> np.ndarray:
        return rgb_to_lab(np.array([[self.rgb]], dtype=np.uint8))[0, 0]


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


@lru_cache(maxsize=1)
def colour_names() -> dict[str, str]:
    """Normalised name (letters only) -> hex. XKCD first: its names are what people call colours."""
    from matplotlib import colors as mcolors

    table: dict[str, str] = {}
    for name, hexcode in mcolors.CSS4_COLORS.items():
        table[_key(name)] = str(hexcode)
    for name, hexcode in mcolors.XKCD_COLORS.items():
        table[_key(name.removeprefix("xkcd:"))] = str(hexcode)
    table["grey"] = table["gray"] = str(mcolors.XKCD_COLORS["xkcd:grey"])
    table.update(EXTRA_NAMES)
    return table


def _hex_rgb(code: str) -> tuple[int, int, int]:
    code = code.lstrip("#")
    if len(code) == 3:
        code = "".join(c * 2 for c in code)
    return int(code[0:2], 16), int(code[2:4], 16), int(code[4:6], 16)


def parse_color(prompt: str, field: str = "prompt") -> Colour:
    """The colour named in ``prompt`` ("pink jacket", "a dark green coat", "#ff8800"), else InvalidRequest."""
    words = _WORD.findall(prompt.lower())
    for w in words:
        if w.startswith("#"):
            return Colour(w, _hex_rgb(w))
    names = colour_names()
    best: tuple[tuple[int, int, int], int, int, str] | None = None  # rank, start, end, hex
    for i in range(len(words)):
        for j in range(min(len(words), i + 4), i, -1):
            span = words[i:j]
            hexcode = names.get("".join(span))
            if hexcode is None:
                continue
            basic = any(w in BASIC for w in span)
            rank = (j - i, int(basic), -i)  # longest, then a basic colour word, then the first
            if best is None or rank > best[0]:
                best = (rank, i, j, hexcode)
            break
    if best is None:
        raise InvalidRequest.one(
            field,
            "names no colour pixelsmith knows; use a colour name such as 'pink', "
            "'dark green', 'pastel blue', 'neon orange' (CSS and XKCD names) or a hex code "
            "like '#ff8800'",
            "unknown_colour",
        )
    _, i, j, hexcode = best
    rgb = _hex_rgb(hexcode)
    mods = [w for w in words[max(0, i - 2) : i] if w in MODIFIERS]
    phrase = " ".join(words[i - len(mods) : j]) if mods else " ".join(words[i:j])
    if mods:
        full = names.get("".join(mods) + "".join(words[i:j]))
        rgb = _hex_rgb(full) if full else _modify(rgb, mods)
    return Colour(phrase, rgb)


def _modify(rgb: tuple[int, int, int], mods: list[str]) -> tuple[int, int, int]:
    L, C, h = lab_to_lch(rgb_to_lab(np.array([[rgb]], dtype=np.uint8))[0, 0])
    for m in mods:
        dl, k = MODIFIERS[m]
        if dl == "pastel":
            L = max(L, 82.0)
        elif dl == "neon":
            L = float(np.clip(L, 55, 80))
        else:
            assert isinstance(dl, float | int)
            L = float(np.clip(L + dl, 4, 97))
        C *= k
    lab = lch_to_lab(np.array([L, C, h], dtype=np.float32))
    r, g, b = (int(v) for v in lab_to_rgb_u8(fit_gamut(lab[None, None]))[0, 0])
    return r, g, b


# --- colour space helpers (float CIELAB: L 0..100, a/b about -128..127) ---


def rgb_to_lab(rgb_u8: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb_u8.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def lab_to_rgb_float(lab: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB)


def lab_to_rgb_u8(lab: np.ndarray) -> np.ndarray:
    return np.clip(lab_to_rgb_float(lab) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def lab_to_lch(lab: np.ndarray) -> tuple[float, float, float]:
    return float(lab[0]), float(np.hypot(lab[1], lab[2])), float(np.arctan2(lab[2], lab[1]))


def lch_to_lab(lch: np.ndarray) -> np.ndarray:
    L, C, h = lch[..., 0], lch[..., 1], lch[..., 2]
    return np.stack([L, C * np.cos(h), C * np.sin(h)], -1).astype(np.float32)


def fit_gamut(lab: np.ndarray, steps: int = 8) -> np.ndarray:
    """Pull out-of-gamut colours toward grey at constant L and hue (clipping RGB would shift the hue)."""
    lab = lab.astype(np.float32).copy()
    for _ in range(steps):
        rgb = lab_to_rgb_float(lab)
        bad = ((rgb < -0.002) | (rgb > 1.002)).any(-1)
        if not bad.any():
            break
        lab[bad, 1:] *= 0.85
    return lab


def lightness_to_y(L: np.ndarray | float) -> np.ndarray:
    """CIE L* -> relative luminance Y (linear light, 0..1)."""
    L = np.asarray(L, dtype=np.float32)
    return np.where(L > 8.0, ((L + 16.0) / 116.0) ** 3, L / 903.3)


def y_to_lightness(Y: np.ndarray | float) -> np.ndarray:
    Y = np.asarray(Y, dtype=np.float32)
    return np.where(Y > 0.008856, 116.0 * np.cbrt(Y) - 16.0, 903.3 * Y)


MIN_HIGHLIGHT_SLOPE = 0.6  # lit folds keep at least 60% of their lightness contrast


def tone_curve(L: np.ndarray, Lm: float, Lt: float, hi: float) -> tuple[np.ndarray, float, float]:
    """Map the object's lightness so its typical value Lm becomes the target's Lt, keeping its shading.

    Below Lm the change is a change of albedo: luminance multiplied by Yt/Ym in linear light, so a crease
    keeps its depth relative to the cloth (black stays near black). Above Lm, a linear map with slope s
    (sqrt(Lt/Lm), limited so the object's 99th percentile stays under 99) rolls highlights off instead
    of blowing them out; a target too light to leave that room (pastel yellow, white) is aimed a little
    lower. The curve is monotonic, so every fold keeps its order of light and dark. Returns the new
    lightness, the highlight slope and the lightness actually aimed at.
    """
    if hi > Lm:  # leave the highlights room: a very light target lands a little lower, shading intact
        Lt = max(min(Lt, 99.0 - MIN_HIGHLIGHT_SLOPE * (hi - Lm)), Lt - 15.0)  # at most 15 lower
    k = float(lightness_to_y(Lt) / max(float(lightness_to_y(Lm)), 1e-5))
    kc = float(np.clip(k, 1 / 12, 12))
    residual = Lt - float(y_to_lightness(lightness_to_y(Lm) * kc))  # non-zero only when k was clamped
    s = float(np.clip(np.sqrt(max(Lt, 1.0) / max(Lm, 1.0)), 0.6, 1.6))
    if hi > Lm:
        s = min(s, max(MIN_HIGHLIGHT_SLOPE, (99.0 - Lt) / (hi - Lm)))
    dark = y_to_lightness(lightness_to_y(L) * kc) + residual
    light = Lt + s * (L - Lm)
    return np.clip(np.where(L < Lm, dark, light), 0.0, 100.0).astype(np.float32), s, Lt


def recolor(rgb_u8: np.ndarray, obj: np.ndarray, weight: np.ndarray, target: Colour) -> tuple[np.ndarray, dict]:
    """Recolour the pixels where ``weight`` > 0; the object's statistics come from ``obj`` (its soft mask).

    Lightness follows :func:`tone_curve`. Chroma: the target's, scaled by each pixel's chroma relative to the
    object's (a grey patch inside a teal jacket stays grey-ish); plain target chroma for a grey object.
    Hue: the target's. Returns the new RGB (the caller blends it in by ``weight``) and the statistics used.
    """
    lab = rgb_to_lab(rgb_u8)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    C = np.hypot(a, b)
    core = obj >= 0.5
    if not core.any():
        core = obj > 0
    Lm = float(np.median(L[core]))
    Cm = float(np.median(C[core]))
    hi = float(np.percentile(L[core], 99))
    Lt, Ct, ht = lab_to_lch(target.lab)
    sel = weight > 0
    newL, s, aimed = tone_curve(L[sel], Lm, Lt, hi)
    chromatic = float(np.clip((Cm - 4.0) / 8.0, 0.0, 1.0))  # 0: grey/black/white object, 1: clearly coloured
    ratio = chromatic * np.clip(C[sel] / max(Cm, 1e-3), 0.0, 1.6) + (1.0 - chromatic)
    newC = Ct * ratio
    out_lab = np.stack([newL, newC * np.cos(ht), newC * np.sin(ht)], -1).astype(np.float32)
    out = rgb_u8.copy()
    out[sel] = lab_to_rgb_u8(fit_gamut(out_lab[None]))[0]
    stats = {
        "object_lightness": round(Lm, 1),
        "object_chroma": round(Cm, 1),
        "target": target.hex,
        "target_lightness": round(Lt, 1),
        "aimed_lightness": round(aimed, 1),
        "target_chroma": round(Ct, 1),
        "highlight_slope": round(s, 3),
    }
    return out, stats
