"""The embedded engine's recipes: one module per tool it serves, each a ``@recipe`` declaration.

The engine imports every module here when the tool list is read (``pixelsmith.engines.Engine.recipes``),
so modules import their models and OpenCV lazily.
"""
