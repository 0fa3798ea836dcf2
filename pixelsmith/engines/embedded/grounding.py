"""Phrase -> mask with packaged models only: a fixed, documented vocabulary.

- COCO's 80 classes (with synonyms and plurals) from the SSD detector, each box
  refined to a pixel mask by MobileSAM prompted with the box when it is installed
  (else GrabCut seeded with ISNet's matte of the box);
- people and their parts from MediaPipe: person, face, hair, skin, hands, head,
  and garments (upper body, lower body, dress, shoes, all clothes) built from the
  person mask minus face, hair and skin, split by the pose landmarks and kept
  to the garment's own colour (so a backpack strap over a jacket stays out), and, when
  MobileSAM is installed, its outline redrawn by SAM from points inside that garment,
  points on what it must not include (straps, face) and the garment's box;
- "the product / main object / subject" from ISNet's salient-object matte.

Anything else raises :class:`~pixelsmith.errors.Unprocessable` listing what can
be found; open-vocabulary grounding needs the diffusers engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from pixelsmith.engines.embedded import session
from pixelsmith.engines.embedded.colors import rgb_to_lab
from pixelsmith.engines.sessions import Detector, Matting, PeopleParser, Segmenter
from pixelsmith.errors import Unprocessable
from pixelsmith.lazy import cv2

if TYPE_CHECKING:
    from pixelsmith.engines.embedded.mediapipe_people import Pose

PEOPLE_MODEL, SSD_MODEL, SALIENT_MODEL = "mediapipe-people", "ssd-mobilenet-v2-coco", "isnet-general"
SAM_MODEL = "mobilesam"


def _segmenter() -> Segmenter | None:
    """MobileSAM when it is installed (it refines boxes and garments); None: the ISNet/GrabCut path."""
    from pixelsmith.models import is_installed

    return session(SAM_MODEL, Segmenter) if is_installed(SAM_MODEL) else None


# kind -> words that name it (singular; plurals are derived). Kinds other than coco:* are people parts.
PEOPLE_WORDS: dict[str, tuple[str, ...]] = {
    "upper": (
        "jacket",
        "coat",
        "sweater",
        "jumper",
        "shirt",
        "t shirt",
        "tshirt",
        "tee",
        "hoodie",
        "top",
        "blouse",
        "cardigan",
        "vest",
        "parka",
        "anorak",
        "blazer",
        "pullover",
        "sweatshirt",
        "fleece",
        "windbreaker",
        "puffer",
        "puffer jacket",
        "jersey",
        "polo",
        "tank top",
        "raincoat",
        "sleeve",
    ),
    "lower": ("trousers", "pants", "jeans", "skirt", "shorts", "leggings", "slacks", "chinos", "joggers"),
    "dress": ("dress", "gown"),
    "shoes": ("shoe", "boot", "sneaker", "trainer", "footwear", "sandal", "heels"),
    "clothes": ("clothes", "clothing", "outfit", "garment", "attire"),
    "face": ("face",),
    "hair": ("hair", "hairstyle"),
    "head": ("head",),
    "skin": ("skin",),
    "hands": ("hand",),
    "person": (
        "person",
        "people",
        "man",
        "men",
        "woman",
        "women",
        "boy",
        "girl",
        "child",
        "children",
        "kid",
        "human",
        "guy",
        "lady",
        "figure",
        "body",
        "hiker",
        "model",
    ),
}
SALIENT_WORDS = ("product", "main object", "object", "subject", "main subject", "foreground", "item", "thing")
COCO_SYNONYMS: dict[str, tuple[str, ...]] = {
    "bicycle": ("bike",),
    "car": ("automobile",),
    "motorcycle": ("motorbike",),
    "airplane": ("plane", "aeroplane", "aircraft", "jet"),
    "truck": ("lorry",),
    "dog": ("puppy",),
    "cat": ("kitten", "kitty"),
    "backpack": ("rucksack",),
    "handbag": ("bag", "purse"),
    "couch": ("sofa",),
    "tv": ("television", "tv monitor", "screen"),
    "cell phone": ("phone", "smartphone", "mobile phone"),
    "dining table": ("table",),
    "potted plant": ("plant", "houseplant"),
    "cup": ("mug",),
    "sports ball": ("ball", "football", "soccer ball", "basketball"),
    "hair drier": ("hair dryer",),
    "donut": ("doughnut",),
    "hot dog": ("hotdog",),
    "remote": ("remote control",),
    "refrigerator": ("fridge",),
    "teddy bear": ("teddy",),
    "wine glass": ("glass",),
    "laptop": ("notebook computer",),
    "sheep": ("lamb",),
    "cow": ("cattle",),
}
PRIORITY = {
    "upper": 3,
    "lower": 3,
    "dress": 3,
    "shoes": 3,
    "face": 3,
    "hair": 3,
    "head": 3,
    "skin": 3,
    "hands": 3,
    "clothes": 3,
    "person": 1,
    "salient": 0,
}  # coco:* is 2
_FILLER = re.compile(r"[^a-z ]+")


def _plurals(word: str) -> set[str]:
    last = word.split(" ")[-1]
    head = word[: len(word) - len(last)]
    forms = {last + "s", last + "es"}
    if last.endswith("y"):
        forms.add(last[:-1] + "ies")
    if last.endswith("f"):
        forms.add(last[:-1] + "ves")
    return {word} | {head + f for f in forms}


def _build_index() -> dict[str, str]:
    from pixelsmith.engines.embedded.ssd import COCO_CLASSES

    index: dict[str, str] = {}
    for name in COCO_CLASSES:
        if name == "person":
            continue  # people come from MediaPipe's masks, not boxes
        for word in (name, *COCO_SYNONYMS.get(name, ())):
            for form in _plurals(word):
                index.setdefault(form, f"coco:{name}")
    for word in SALIENT_WORDS:
        index[word] = "salient"
    for kind, words in PEOPLE_WORDS.items():
        for word in words:
            for form in _plurals(word):
                index[form] = kind
    return index


_INDEX: dict[str, str] | None = None


def index() -> dict[str, str]:
    global _INDEX
    if _INDEX is None:
        _INDEX = _build_index()
    return _INDEX


def vocabulary() -> dict[str, list[str]]:
    """What can be found, grouped, for error messages and docs."""
    from pixelsmith.engines.embedded.ssd import COCO_CLASSES

    return {
        "garments": [w for k in ("upper", "lower", "dress", "shoes", "clothes") for w in PEOPLE_WORDS[k]],
        "people": ["person", "face", "hair", "head", "skin", "hands"],
        "objects (COCO)": [c for c in COCO_CLASSES if c != "person"],
        "main object": ["product", "main object", "subject", "foreground"],
    }


def resolve(phrase: str) -> tuple[str, str] | None:
    """(kind, the words that matched) for the most specific vocabulary term in ``phrase``, or None."""
    words = _FILLER.sub(" ", phrase.lower().replace("-", " ")).split()
    idx = index()
    best: tuple[tuple[int, int, int], str, str] | None = None
    for i in range(len(words)):
        for j in range(min(len(words), i + 3), i, -1):
            term = " ".join(words[i:j])
            kind = idx.get(term) or idx.get(term.replace(" ", ""))
            if kind is None:
                continue
            rank = (PRIORITY.get(kind, 2), j - i, -i)
            if best is None or rank > best[0]:
                best = (rank, kind, term)
            break
    return (best[1], best[2]) if best else None


def unknown_phrase(phrase: str) -> Unprocessable:
    vocab = vocabulary()
    listing = "; ".join(f"{group}: {', '.join(words)}" for group, words in vocab.items())
    err = Unprocessable(
        f"select_prompt {phrase!r} is outside the embedded engine's vocabulary. It can find {listing}. "
        "For any other phrase use the diffusers engine (open-vocabulary grounding; `--engine diffusers`)."
    )
    err.vocabulary = vocab  # type: ignore[attr-defined]
    return err


@dataclass
class Grounded:
    mask: np.ndarray  # float32 HxW 0..1, soft edges
    kind: str
    term: str
    metadata: dict = field(default_factory=dict)


def ground(image: Image.Image, phrase: str) -> Grounded:
    """The mask of what ``phrase`` names, or Unprocessable (unknown phrase, or nothing of it in the image)."""
    found = resolve(phrase)
    if found is None:
        raise unknown_phrase(phrase)
    kind, term = found
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    if kind == "salient":
        mask = session(SALIENT_MODEL, Matting).matte(image)
        if (mask >= 0.5).mean() < 0.002:
            raise Unprocessable(f"found no main object in the image for {phrase!r}")
        return Grounded(mask, kind, term, {"grounding": "isnet salient object"})
    if kind.startswith("coco:"):
        return _ground_coco(image, rgb, kind[5:], term, phrase)
    return _ground_people(image, rgb, kind, term, phrase)


# --- COCO objects -----------------------------------------------------------------------------------------


def _ground_coco(image: Image.Image, rgb: np.ndarray, label: str, term: str, phrase: str) -> Grounded:
    detections = session(SSD_MODEL, Detector).detect(image, min_score=0.3)
    boxes = [d for d in detections if d.label == label][:4]
    if not boxes:
        seen = sorted({d.label for d in detections})
        raise Unprocessable(
            f"found no {label} in the image for {phrase!r}"
            + (f"; it found: {', '.join(seen)}" if seen else "; it found no COCO object at all")
        )
    mask = np.zeros(rgb.shape[:2], np.float32)
    sam = _segmenter()
    how = set()
    for det in boxes:
        refined = _sam_box(sam, image, det.box) if sam is not None else None
        how.add("mobilesam" if refined is not None else "isnet + grabcut")
        mask = np.maximum(mask, refined if refined is not None else _refine_box(image, rgb, det.box))
    return Grounded(
        mask,
        f"coco:{label}",
        term,
        {
            "grounding": "ssd-mobilenet-v2-coco + " + " / ".join(sorted(how)),
            "boxes": [{"box": list(d.box), "score": round(d.score, 3)} for d in boxes],
        },
    )


def _sam_box(sam: Segmenter, image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """SAM's mask for one detection box (soft, its own sigmoid edge), or None when SAM is unsure of it."""
    x0, y0, x1, y1 = box
    # SAM's single-mask answer to a box is sometimes only a part (a cup's rim): the best-scored of all four
    tries = [sam.segment(image, box=[x0, y0, x1, y1], multimask=m) for m in (False, True)]
    seg = max(tries, key=lambda t: t.score)
    area = float(seg.array.sum())
    if seg.score < 0.5 or area < 0.05 * (x1 - x0) * (y1 - y0):
        return None
    return seg.probability()


def _refine_box(image: Image.Image, rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A pixel mask inside one detection box: ISNet's matte of the crop seeds GrabCut."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    mx, my = int(0.08 * (x1 - x0)) + 4, int(0.08 * (y1 - y0)) + 4
    cx0, cy0, cx1, cy1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    crop = rgb[cy0:cy1, cx0:cx1]
    matte = session(SALIENT_MODEL, Matting).matte(Image.fromarray(crop))
    inbox = np.zeros(crop.shape[:2], bool)
    inbox[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0] = True
    labels = np.full(crop.shape[:2], cv2.GC_BGD, np.uint8)
    labels[inbox] = cv2.GC_PR_BGD
    share = float((matte[inbox] >= 0.5).mean())
    if 0.05 < share < 0.97:
        labels[inbox & (matte >= 0.4)] = cv2.GC_PR_FGD
        core = cv2.erode((matte >= 0.9).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        labels[inbox & core] = cv2.GC_FGD
    else:  # the object is not salient in its box: plain box-initialised GrabCut
        ih, iw = y1 - y0, x1 - x0
        labels[y0 - cy0 + ih // 8 : y1 - cy0 - ih // 8, x0 - cx0 + iw // 8 : x1 - cx0 - iw // 8] = cv2.GC_PR_FGD
    soft = _grabcut(crop, labels)
    out = np.zeros((h, w), np.float32)
    out[cy0:cy1, cx0:cx1] = soft
    return out


def _grabcut(rgb: np.ndarray, labels: np.ndarray, iters: int = 3, max_side: int = 400) -> np.ndarray:
    """GrabCut at a working size, the hard result made soft along the image's own edges (guided filter)."""
    h, w = labels.shape
    k = min(1.0, max_side / max(h, w))
    small = cv2.resize(rgb, (max(1, int(w * k)), max(1, int(h * k))), interpolation=cv2.INTER_AREA) if k < 1 else rgb
    lab_small = cv2.resize(labels, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    fgd_any = np.isin(lab_small, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
    bgd_any = np.isin(lab_small, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
    if fgd_any and bgd_any:
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut's GMM init is random: same image, same mask
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), lab_small, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    hard = np.isin(lab_small, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    full = cv2.resize(hard, (w, h), interpolation=cv2.INTER_LINEAR)
    radius = max(2, int(round(2 / k)))
    soft = cv2.ximgproc.guidedFilter(rgb, full, radius, 1e-3)
    return np.clip((soft - 0.5) * 1.6 + 0.5, 0.0, 1.0).astype(np.float32)


# --- people and garments ----------------------------------------------------------------------------------


def _ground_people(image: Image.Image, rgb: np.ndarray, kind: str, term: str, phrase: str) -> Grounded:
    people = session(PEOPLE_MODEL, PeopleParser)
    person = people.person_mask(image)
    parts = body_parts(image, rgb, person, people) if (person >= 0.5).mean() >= 0.002 else None
    # The segmenter alone also fires on animals and statues: a person needs a body pose or a face too.
    if parts is None or (parts.pose is None and not parts.faces):
        raise Unprocessable(
            f"found no person in the image for {phrase!r} (people, faces, hair, skin and garments are found on people)"
        )
    meta = {"pose_found": parts.pose is not None, "faces": len(parts.faces)}
    if kind == "person":
        return Grounded(_soften(rgb, parts.person), kind, term, {"grounding": "mediapipe segmentation", **meta})
    mask = parts.mask_for(kind, rgb)
    if (mask >= 0.5).sum() < 0.0005 * mask.size:
        raise Unprocessable(f"found no {term} on the person in the image for {phrase!r}")
    how = "mediapipe pose + face mesh + colour-seeded grabcut" + (" + mobilesam outline" if _segmenter() else "")
    return Grounded(mask, kind, term, {"grounding": how, **meta})


def _soften(rgb: np.ndarray, hard: np.ndarray) -> np.ndarray:
    soft = cv2.ximgproc.guidedFilter(rgb, hard.astype(np.float32), 4, 1e-3)
    return np.clip((soft - 0.5) * 1.6 + 0.5, 0, 1).astype(np.float32)


def _polygon(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(points).astype(np.int32)], 1)
    return out.astype(bool)


def _tube(shape: tuple[int, int], points: list[np.ndarray], radius: float) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    r = max(1, int(round(radius)))
    for p, q in zip(points, points[1:]):
        cv2.line(out, tuple(int(v) for v in np.round(p)), tuple(int(v) for v in np.round(q)), 1, 2 * r)
    for p in points:
        cv2.circle(out, tuple(int(v) for v in np.round(p)), r, 1, -1)
    return out.astype(bool)


def _below_line(shape: tuple[int, int], p: np.ndarray, q: np.ndarray, offset: float) -> np.ndarray:
    """Pixels below the straight line through p and q shifted down by ``offset`` (image y grows downward)."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = q[0] - p[0]
    slope = (q[1] - p[1]) / dx if abs(dx) > 1e-3 else 0.0
    line_y = p[1] + slope * (xs - p[0]) + offset
    return ys > line_y


@dataclass
class BodyParts:
    person: np.ndarray  # bool
    face: np.ndarray  # bool
    skin: np.ndarray  # bool
    hair: np.ndarray  # bool
    head_zone: np.ndarray  # bool
    pose: Pose | None
    faces: list
    extent: float  # body scale in pixels (shoulder width, or face size)

    def mask_for(self, kind: str, rgb: np.ndarray) -> np.ndarray:
        shape: tuple[int, int] = (self.person.shape[0], self.person.shape[1])
        if kind == "face":
            return _soften(rgb, self.face)
        if kind == "hair":
            return _soften(rgb, self.hair)
        if kind == "head":
            return _soften(rgb, self.face | self.hair)
        if kind == "skin":
            return _soften(rgb, self.skin)
        if kind == "hands":
            return _soften(rgb, self.skin & self._hand_zone())
        not_body = self.face | self.skin | self.hair
        if kind == "clothes":
            return _soften(rgb, self.person & ~not_body)
        if self.pose is None:
            raise Unprocessable(
                f"found no body pose for {kind} garments (the person must be visible from the shoulders down)"
            )
        pts = self.pose.points
        sw = self.extent
        arms = _tube(shape, [pts[11], pts[13], pts[15]], 0.3 * sw) | _tube(shape, [pts[12], pts[14], pts[16]], 0.3 * sw)
        torso_len = float(np.linalg.norm((pts[11] + pts[12]) / 2 - (pts[23] + pts[24]) / 2))
        if kind == "upper":  # jackets and coats reach below the hips
            zone = ~_below_line(shape, pts[23], pts[24], 0.3 * torso_len) | arms
            core = self._torso(shape)
        elif kind == "dress":
            zone = ~_below_line(shape, pts[25], pts[26], 0.15 * torso_len) | arms
            core = self._torso(shape)
        elif kind == "lower":
            zone = (
                _below_line(shape, pts[23], pts[24], -0.1 * torso_len)
                & ~_below_line(shape, pts[27], pts[28], 0.0)
                & ~_tube(shape, [pts[13], pts[15], pts[19]], 0.3 * sw)
                & ~_tube(shape, [pts[14], pts[16], pts[20]], 0.3 * sw)
            )
            core = _polygon(shape, np.array([pts[23], pts[24], pts[26], pts[25]])) & zone
        elif kind == "shoes":
            foot = max(float(np.linalg.norm(pts[29] - pts[31])), 0.12 * sw)
            zone = _tube(shape, [pts[27], pts[29], pts[31], pts[27]], 0.6 * foot) | _tube(
                shape, [pts[28], pts[30], pts[32], pts[28]], 0.6 * foot
            )
            core = None
            # Brown leather passes for skin by colour; at the feet, shoes are the likelier reading.
            not_body = self.face | self.hair
        else:
            raise Unprocessable(f"no garment kind {kind!r}")
        candidate = self.person & zone & ~not_body
        if candidate.sum() < 0.0005 * candidate.size:
            return np.zeros(shape, np.float32)
        gate = _colour_gate(
            rgb, candidate & (core if core is not None and (core & candidate).sum() > 200 else candidate)
        )
        return self._cut(rgb, candidate, gate, not_body)

    def _torso(self, shape: tuple[int, int]) -> np.ndarray:
        assert self.pose is not None  # only called for garments, after the pose check
        pts = self.pose.points
        return _polygon(shape, np.array([pts[11], pts[12], pts[24], pts[23]]))

    def _hand_zone(self) -> np.ndarray:
        if self.pose is None:
            return np.ones(self.person.shape, bool)
        pts = self.pose.points
        r = 0.35 * self.extent
        return _tube(
            (self.person.shape[0], self.person.shape[1]), [pts[15], pts[17], pts[19], pts[21], pts[15]], r
        ) | _tube((self.person.shape[0], self.person.shape[1]), [pts[16], pts[18], pts[20], pts[22], pts[16]], r)

    def _cut(self, rgb: np.ndarray, candidate: np.ndarray, gate: np.ndarray, not_body: np.ndarray) -> np.ndarray:
        """GrabCut seeded by the garment's colour: gate pixels are likely garment, the rest of the body likely not."""
        shape: tuple[int, int] = (candidate.shape[0], candidate.shape[1])
        k = max(3, int(0.01 * max(shape)))
        near = cv2.dilate(self.person.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)).astype(bool)
        labels = np.full(shape, cv2.GC_BGD, np.uint8)
        labels[near] = cv2.GC_PR_BGD
        likely = candidate & gate
        labels[likely] = cv2.GC_PR_FGD
        sure = cv2.erode(likely.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)).astype(bool)
        labels[sure] = cv2.GC_FGD
        # A wide region of another colour inside the body (a backpack strap, a bag, trousers) is surely not
        # the garment: marking it so teaches GrabCut its colours, sheen included. Thin ones may be creases.
        wide = max(5, int(0.04 * self.extent) | 1)
        other = cv2.erode(
            (candidate & ~gate).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (wide, wide))
        ).astype(bool)
        labels[other] = cv2.GC_BGD
        labels[not_body] = cv2.GC_BGD
        cut = _grabcut(rgb, labels) >= 0.5
        # The garment's own colour has the last word inside the body; its thin dark creases are then taken back.
        tidy = cv2.morphologyEx(gate.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        tidy = cv2.morphologyEx(tidy, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)).astype(bool)
        tidy = _fill_creases(cut & tidy & candidate, candidate, self.extent)
        sam = _segmenter()
        if sam is not None and tidy.sum() > 500:
            refined = _sam_garment(sam, rgb, tidy, candidate, other | not_body, k)
            if refined is not None:
                # SAM leaves a zip or a deep seam out as its own thin object: a gap narrower than a closing
                # that the colour-seeded garment (creases filled) holds goes back in
                hard = (refined >= 0.5).astype(np.uint8)
                ring = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (wide, wide))
                gaps = cv2.morphologyEx(hard, cv2.MORPH_CLOSE, ring).astype(bool) & tidy & ~hard.astype(bool)
                refined = np.maximum(refined, gaps.astype(np.float32))
                refined[not_body] = 0.0
                return _drop_specks(refined)
        soft = _soften(rgb, tidy & ~not_body)
        soft[not_body] = 0.0  # never recolour a face, skin or hair, whatever the smoothing did
        return _drop_specks(soft)


def _spread_points(region: np.ndarray, count: int, spacing: float) -> list[tuple[int, int]]:
    """Up to ``count`` points deep inside ``region`` (distance-transform maxima), at least ``spacing`` apart."""
    dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)
    points: list[tuple[int, int]] = []
    for _ in range(count):
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        if dist[y, x] < 3.0:
            break
        points.append((int(x), int(y)))
        cv2.circle(dist, (int(x), int(y)), int(spacing), 0.0, -1)
    return points


def _sam_garment(
    sam: Segmenter, rgb: np.ndarray, garment: np.ndarray, candidate: np.ndarray, exclude: np.ndarray, k: int
) -> np.ndarray | None:
    """SAM redraws the garment's outline: include points deep in the colour-gated garment, exclude points on
    wide regions of another colour (straps, a bag) and on the face/skin/hair, the garment's box. Kept inside
    the body's garment zone (grown by ``k`` px); None when SAM disagrees with the garment (IoU < 0.6)."""
    ys, xs = np.nonzero(garment)
    h, w = garment.shape
    side = max(int(xs.max() - xs.min()), int(ys.max() - ys.min()))
    pad = int(0.03 * side)
    box = [max(0, xs.min() - pad), max(0, ys.min() - pad), min(w - 1, xs.max() + pad), min(h - 1, ys.max() + pad)]
    spacing = 0.15 * side
    include = _spread_points(garment, 5, spacing)
    avoid = exclude & ~cv2.dilate(garment.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)).astype(bool)
    inside_box = np.zeros_like(avoid)
    inside_box[box[1] : box[3], box[0] : box[2]] = True
    excl = _spread_points(avoid & inside_box, 4, 0.5 * spacing)
    points = [[x, y, 1] for x, y in include] + [[x, y, 0] for x, y in excl]
    seg = sam.segment(Image.fromarray(rgb), points=points, box=box, multimask=False)
    zone = cv2.dilate(candidate.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)).astype(bool)
    mask = seg.array & zone
    inter, union = float((mask & garment).sum()), float((mask | garment).sum())
    if seg.score < 0.5 or union == 0 or inter / union < 0.6:
        return None
    return (seg.probability() * zone).astype(np.float32)


def _fill_creases(garment: np.ndarray, region: np.ndarray, extent: float) -> np.ndarray:
    """Add back the thin dark gaps inside the garment: creases, seams, a zip.

    A gap narrower than ~4% of the shoulder width, mostly bordered by the garment, is part of it. Wider
    dark regions stay out: a backpack strap, trousers below a jacket, and also a deep shadow under an arm,
    which is ambiguous from colour alone (it keeps its original near-black, which reads as shadow).
    """
    holes = (region & ~garment).astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=8)
    if n <= 1:
        return garment
    dist = cv2.distanceTransform(holes, cv2.DIST_L2, 3)
    thickness = np.zeros(n, np.float32)
    np.maximum.at(thickness, comp.ravel(), dist.ravel())
    out = garment.copy()
    ring_kernel = np.ones((7, 7), np.uint8)
    for i in np.flatnonzero(thickness < 0.02 * extent):
        if i == 0:
            continue
        x, y, w, h, _ = stats[i]
        y0, y1, x0, x1 = max(0, y - 4), y + h + 4, max(0, x - 4), x + w + 4
        part = comp[y0:y1, x0:x1] == i
        ring = cv2.dilate(part.astype(np.uint8), ring_kernel).astype(bool) & ~part
        if ring.any() and garment[y0:y1, x0:x1][ring].mean() > 0.5:
            out[y0:y1, x0:x1] |= part
    return out


def _drop_specks(soft: np.ndarray) -> np.ndarray:
    hard = (soft >= 0.5).astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(hard, connectivity=8)
    if n <= 2:
        return soft
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= 0.02 * areas.max()
    grown = cv2.dilate(keep[comp].astype(np.uint8), np.ones((5, 5), np.uint8))
    return soft * grown


def _colour_gate(rgb: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Pixels that look like the garment: same hue family for a coloured garment, similar lightness for a grey one."""
    lab = rgb_to_lab(rgb)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    C = np.hypot(a, b)
    am, bm, Lm = (float(np.median(ch[core])) for ch in (a, b, L))
    Cm = float(np.hypot(am, bm))
    if Cm >= 8.0:
        hue_diff = np.abs(np.angle(np.exp(1j * (np.arctan2(b, a) - np.arctan2(bm, am)))))
        # Shade lowers chroma with lightness, so the chroma floor follows lightness: a sleeve in shadow is
        # still the sleeve, while a black strap's faint tint has the wrong hue or too little chroma.
        floor = np.maximum(2.5, Cm * np.minimum(0.6, 0.75 * L / max(Lm, 1.0)))
        return (hue_diff < np.radians(28)) & (C > floor)
    spread = float(np.percentile(np.abs(L[core] - Lm), 90))
    return (np.abs(L - Lm) < max(18.0, 1.5 * spread)) & (C < max(12.0, 2.5 * Cm))


def body_parts(image: Image.Image, rgb: np.ndarray, person_soft: np.ndarray, people) -> BodyParts:
    shape: tuple[int, int] = (rgb.shape[0], rgb.shape[1])
    pose = people.pose(image)
    person = person_soft >= 0.5
    if pose is not None and pose.mask is not None:
        person |= pose.mask >= 0.5
    faces = people.faces(image)
    face = np.zeros(shape, bool)
    for f in faces:
        face |= _polygon(shape, f.outline)
    extent = 0.0
    if pose is not None:
        extent = float(np.linalg.norm(pose.points[11] - pose.points[12]))
    if faces:
        fsize = max(float(np.ptp(f.oval[:, 0])) for f in faces)
        extent = max(extent, 1.6 * fsize)
    extent = extent or 0.25 * max(shape)
    skin = _skin(rgb, person, faces, face)
    head_zone = _head_zone(shape, faces, pose)
    # Hair: the head's person pixels that are not face or skin. Pixels coloured like the clothing below the
    # chin (a hood, a collar) are not hair.
    body_gate = np.zeros(shape, bool)
    if pose is not None:
        torso = _polygon(shape, np.array([pose.points[11], pose.points[12], pose.points[24], pose.points[23]]))
        core = torso & person & ~face & ~skin
        if core.sum() > 200:
            body_gate = _colour_gate(rgb, core)
    hair = person & head_zone & ~face & ~skin & ~body_gate
    return BodyParts(person, face, skin, hair, head_zone, pose, faces, extent)


def _skin(rgb: np.ndarray, person: np.ndarray, faces: list, face: np.ndarray) -> np.ndarray:
    """Skin by a colour model learnt from this person's own cheeks and forehead (YCrCb), inside the person."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    from pixelsmith.engines.embedded.mediapipe_people import SKIN_SAMPLES

    samples = []
    h, w = rgb.shape[:2]
    for f in faces:
        for i in SKIN_SAMPLES:
            x, y = (int(round(v)) for v in f.points[i])
            if 3 <= x < w - 3 and 3 <= y < h - 3:
                samples.append(ycc[y - 3 : y + 4, x - 3 : x + 4].reshape(-1, 3))
    reddish = ycc[..., 1] - ycc[..., 2] > 8  # skin of any tone is redder than grey; hair, glare and cloth rarely are
    s = np.concatenate(samples) if samples else np.zeros((0, 3), np.float32)
    s = s[s[:, 1] - s[:, 2] > 8]
    if len(s) >= 50:
        crcb = s[:, 1:]
        mean = np.median(crcb, 0)
        spread = 1.4826 * np.median(np.abs(crcb - mean), 0)  # robust to beard, glasses and glare in the samples
        d = (ycc[..., 1:] - mean) / np.maximum(spread, 3.0)
        ymin = max(20.0, float(np.percentile(s[:, 0], 5)) * 0.4)
        skin = ((d**2).sum(-1) < 9.0) & (ycc[..., 0] > ymin) & reddish
    else:  # no face to learn from: a broad, conventional skin range
        skin = (ycc[..., 1] > 135) & (ycc[..., 1] < 175) & (ycc[..., 2] > 85) & (ycc[..., 2] < 135)
    skin &= person
    skin = cv2.morphologyEx(skin.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    return skin | face


def _head_zone(shape: tuple[int, int], faces: list, pose) -> np.ndarray:
    zone = np.zeros(shape, np.uint8)
    if faces:
        for f in faces:
            oval = f.oval
            (x0, y0), (x1, y1) = oval.min(0), oval.max(0)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            fw, fh = x1 - x0, y1 - y0
            # Hair sits above and beside the face oval; the ellipse stops at the chin.
            cv2.ellipse(zone, (int(cx), int(cy - 0.2 * fh)), (int(0.85 * fw), int(0.75 * fh)), 0, 0, 360, 1, -1)
            zone[int(y1) :, :] = 0
    elif pose is not None:
        head = pose.points[:11]
        cx, cy = head.mean(0)
        size = max(float(np.ptp(head[:, 0])), 1.0)
        cv2.ellipse(zone, (int(cx), int(cy - 0.3 * size)), (int(0.9 * size), int(1.0 * size)), 0, 0, 360, 1, -1)
    return zone.astype(bool)
