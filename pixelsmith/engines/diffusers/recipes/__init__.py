"""The diffusers engine's recipes: one module per tool, each a ``@recipe`` declaration.

``_common.py`` holds the steps they share. The engine imports every module here when the tool list is
read (``pixelsmith.engines.Engine.recipes``), so modules import torch, diffusers and OpenCV lazily.
"""
