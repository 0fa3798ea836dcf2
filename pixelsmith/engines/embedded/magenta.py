"""Magenta arbitrary image stylization (Ghiasi et al. 2017), two int8 ONNX networks on onnxruntime.

* ``predict.onnx``: the style prediction network (MobileNet): a 256x256 RGB image in 0..1 (NHWC) -> the
  100-number style bottleneck ``(1, 1, 1, 100)``.
* ``transform.onnx``: the style transfer network: a content image (NHWC, 0..1) and a bottleneck -> the
  stylised image, same size, 0..1.

The transformer is fully convolutional (mirror pads, convolutions, conditional instance norm, x2 resizes by
scale), but the converted file declares its input as 384x384. The shapes of the graph's inputs and outputs
are dropped when the file is loaded (the file on disk stays the verified one), so it runs at any size whose
sides are multiples of 4 (it downsamples twice by 2); :meth:`MagentaSession.stylize` pads to that.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from PIL import Image

from pixelsmith.engines.embedded import session_class
from pixelsmith.engines.embedded.onnx_options import session_options
from pixelsmith.models import model_path

STYLE_SIZE = 256
BOTTLENECK = 100


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _put_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _fields(buf: bytes) -> list[tuple[int, int, bytes]]:
    """Top-level protobuf fields of ``buf``: (number, wire type, the field's raw bytes including its key)."""
    out, pos = [], 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            pos += size
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, buf[start:pos]))
    return out


def _payload(raw: bytes) -> bytes:
    _, pos = _varint(raw, 0)
    _, pos = _varint(raw, pos)
    return raw[pos:]


def _message(number: int, payload: bytes) -> bytes:
    return _put_varint(number << 3 | 2) + _put_varint(len(payload)) + payload


def _edit(buf: bytes, number: int, fn) -> bytes:
    """``buf`` with each length-delimited field ``number`` replaced by ``fn(payload)`` (None drops it)."""
    parts = []
    for num, wire, raw in _fields(buf):
        if num == number and wire == 2:
            new = fn(_payload(raw))
            if new is not None:
                parts.append(_message(num, new))
        else:
            parts.append(raw)
    return b"".join(parts)


def without_io_shapes(model: bytes) -> bytes:
    """An ONNX ModelProto with the shapes of its graph inputs/outputs and its value_info removed.

    ModelProto.graph = 7; GraphProto.input = 11, output = 12, value_info = 13; ValueInfoProto.type = 2;
    TypeProto.tensor_type = 1; TypeProto.Tensor.shape = 2 (onnx.proto3).
    """

    def drop_shape(value_info: bytes) -> bytes:
        return _edit(value_info, 2, lambda type_proto: _edit(type_proto, 1, lambda tensor: _edit(tensor, 2, _none)))

    def graph(payload: bytes) -> bytes:
        payload = _edit(payload, 13, _none)
        return _edit(_edit(payload, 11, drop_shape), 12, drop_shape)

    return _edit(model, 7, graph)


def _none(_payload: bytes) -> None:
    return None


def to_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)[None] / 255.0


@session_class("magenta-arbitrary-style")
class MagentaSession:
    model = "magenta-arbitrary-style"

    def __init__(self) -> None:
        opts = session_options()  # threads() intra-op threads that sleep when idle: onnx_options.py
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        predict = model_path(self.model, "predict.onnx")
        transform = model_path(self.model, "transform.onnx").read_bytes()
        self.predict = ort.InferenceSession(str(predict), opts, providers=providers)
        self.transform = ort.InferenceSession(without_io_shapes(transform), opts, providers=providers)
        self.predict_input = self.predict.get_inputs()[0].name
        self.content_input, self.bottleneck_input = (i.name for i in self.transform.get_inputs())

    def style_vector(self, image: Image.Image) -> np.ndarray:
        """The 100-d style bottleneck of ``image``: its central square at 256x256 (as Magenta trains it)."""
        rgb = image.convert("RGB")
        side = min(rgb.size)
        left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
        square = rgb.crop((left, top, left + side, top + side))
        square = square.resize((STYLE_SIZE, STYLE_SIZE), Image.Resampling.LANCZOS)
        out = self.predict.run(None, {self.predict_input: to_array(square)})[0]
        return np.asarray(out, dtype=np.float32).reshape(1, 1, 1, BOTTLENECK)

    def stylize(self, content: Image.Image, bottleneck: np.ndarray) -> Image.Image:
        """``content`` repainted with the style ``bottleneck``, at ``content``'s size (run at that size)."""
        x = to_array(content)
        h, w = x.shape[1:3]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="reflect")
        feed = {self.content_input: np.ascontiguousarray(x), self.bottleneck_input: bottleneck.astype(np.float32)}
        out = self.transform.run(None, feed)[0][0, :h, :w]
        return Image.fromarray((np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")
