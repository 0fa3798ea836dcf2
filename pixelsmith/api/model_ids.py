"""Bedrock model IDs -> the tool (and fixed fields) that serves them.

Clients name a model many ways: the base ID (``stability.stable-fast-upscale-v1:0``),
an inference-profile ID with a geography prefix (``us.``, ``eu.``, ``apac.``,
``global.``, ...), a foundation-model or inference-profile ARN, and the colon raw
or percent-encoded as ``%3A`` (boto3 encodes it). All resolve to one base ID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pixelsmith.errors import UnknownModel
from pixelsmith.tools import all_tools

# Geography prefixes of cross-region inference profiles (AWS documents us., eu.,
# apac., global.; the others exist for other model families and cost nothing to accept).
PROFILE_PREFIXES = ("us-gov.", "us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.")
_ARN = re.compile(
    r"^arn:aws[\w-]*:bedrock:[\w-]*:\d*:(?:foundation-model|inference-profile|"
    r"system-defined-inference-profile)/(?P<id>.+)$"
)
NOT_FOUND = "Could not resolve the foundation model from the provided model identifier."

# The text-to-image models are one tool (generate); the model ID fixes its role.
_GENERATE_IDS = {
    "stability.sd3-5-large-v1:0": "sd3.5-large",
    "stability.stable-image-core-v1:0": "core",
    "stability.stable-image-core-v1:1": "core",
    "stability.stable-image-ultra-v1:0": "ultra",
    "stability.stable-image-ultra-v1:1": "ultra",
}


@dataclass(frozen=True)
class ModelTarget:
    """What one Bedrock model ID runs: a tool, plus fields the ID itself sets."""

    model_id: str  # the base ID
    tool: str
    fixed: dict[str, Any] = field(default_factory=dict)


def base_id(model_id: str) -> str:
    """Normalise any accepted spelling to the base model ID (no prefix, no ARN, raw colon)."""
    text = unquote(model_id.strip())
    match = _ARN.match(text)
    if match:
        text = match.group("id")
    for prefix in PROFILE_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return text


def targets() -> dict[str, ModelTarget]:
    table = {
        t.bedrock_model: ModelTarget(t.bedrock_model, t.name)
        for t in all_tools()
        if t.bedrock_model and t.name != "generate"
    }
    for mid, role in _GENERATE_IDS.items():
        table[mid] = ModelTarget(mid, "generate", {"model": role})
    return table


def resolve(model_id: str) -> ModelTarget:
    """The target of a model ID, or UnknownModel (Bedrock's ResourceNotFoundException)."""
    if not model_id or len(model_id) > 2048:
        raise UnknownModel(NOT_FOUND)
    target = targets().get(base_id(model_id))
    if target is None:
        raise UnknownModel(NOT_FOUND)
    return target
