"""napari-mclstexp: spatial gene expression from H&E images with mclSTExp.

The engine (everything outside ``_qt``) imports neither Qt nor napari.
"""

__version__ = "0.1.0"
