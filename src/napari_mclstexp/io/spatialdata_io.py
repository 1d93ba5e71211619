"""SpatialData ``.zarr`` in and out (optional extra ``napari-mclstexp[spatialdata]``).

In: a table annotating a shapes element (spot circles or bin/tile polygons) plus an image element →
one sample (AnnData, project conventions): shape centres are brought into the image's pixel frame
through the store's own transformations, and the image is written once as a pyramidal OME-TIFF (the
engine reads slides from files).  Out: predictions as a table annotating a shapes element (circles for
spots, squares for bins/tiles) in full-resolution pixels of the slide (Identity to ``global``), with the
slide referenced (``uns['mclstexp']['source_image_path']``) or embedded as a multiscale image element
in the same frame, so ``spatialdata.read_zarr`` shows predictions lined up on the slide.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, MissingInputError, SampleFormatError
from ..sample import image_path, library_id, spatial_uns, spot_diameter_px, spot_xy, validate_sample


def _require() -> Any:
    try:
        import spatialdata
    except ImportError as err:  # pragma: no cover - the extra is installed by make setup
        raise InputError(
            "SpatialData support needs the optional extra: pip install 'napari-mclstexp[spatialdata]'"
        ) from err
    return spatialdata


def _centres(gdf: Any) -> tuple[np.ndarray, float | None]:
    """(N, 2) centres in the element's own frame and the shape diameter (circles: 2 × radius)."""
    geom = gdf.geometry
    if (geom.geom_type == "Point").all():
        xy = np.stack([geom.x.to_numpy(), geom.y.to_numpy()], 1)
        diameter = float(2 * np.median(gdf["radius"])) if "radius" in gdf else None
    else:
        cent = geom.centroid
        xy = np.stack([cent.x.to_numpy(), cent.y.to_numpy()], 1)
        diameter = float(np.median(np.sqrt(geom.area.to_numpy())))
    return xy.astype(np.float64), diameter


def read_spatialdata(
    store: str | os.PathLike,
    *,
    table: str | None = None,
    image: str | None = None,
    image_out: str | os.PathLike | None = None,
    library_id_: str | None = None,
) -> Any:
    """Read one table of a SpatialData store as a sample.

    Parameters
    ----------
    store
        The ``.zarr`` folder.
    table, image
        Element names (default: the only/first table; the first image).
    image_out
        Where to write the image element as a pyramidal OME-TIFF (default: ``<store>.image.ome.tif``
        beside the store); ``False``-like empty string: no image (expression only).
    library_id_
        Sample name (default: the store's name without ``.zarr``).

    Returns
    -------
    anndata.AnnData
        Table rows with shapes; ``obsm['spatial']`` shape centres in the image's full-resolution pixels
        (x, y); ``uns['spatial'][lib]`` (``spot_diameter_fullres``, ``source_image_path``).

    Raises
    ------
    MissingInputError, SampleFormatError
    """
    sd = _require()
    from spatialdata.transformations import get_transformation_between_coordinate_systems

    store = Path(store).expanduser()
    if not store.exists():
        raise MissingInputError("SpatialData store not found", store)
    try:
        sdata = sd.read_zarr(store)
    except Exception as err:  # zarr/ome-zarr raise many types for foreign folders
        raise SampleFormatError(f"not a readable SpatialData store: {err}", store) from err
    if not sdata.tables:
        raise SampleFormatError("the store has no table (expression) element", store)
    name = table or next(iter(sdata.tables))
    if name not in sdata.tables:
        raise SampleFormatError(f"no table '{name}' (tables: {', '.join(sdata.tables)})", store)
    tab = sdata.tables[name]
    attrs = tab.uns.get("spatialdata_attrs", {})
    regions = attrs.get("region")
    region = regions[0] if isinstance(regions, list | tuple | np.ndarray) else regions
    if region not in sdata.shapes:
        raise SampleFormatError(f"table '{name}' annotates '{region}', which is not a shapes element", store)
    rows = tab[tab.obs[attrs["region_key"]].astype(str) == str(region)].copy()
    shapes = sdata.shapes[region]
    xy, diameter = _centres(shapes)
    xy = pd.DataFrame(xy, index=shapes.index).loc[rows.obs[attrs["instance_key"]].to_numpy()].to_numpy()
    img_name = image or (next(iter(sdata.images)) if sdata.images else None)
    lib = library_id_ or store.name.removesuffix(".zarr")
    image_file = None
    if img_name is not None:
        if img_name not in sdata.images:
            raise SampleFormatError(f"no image '{img_name}' (images: {', '.join(sdata.images)})", store)
        element = sdata.images[img_name]
        t = get_transformation_between_coordinate_systems(sdata, shapes, element)
        m = t.to_affine_matrix(input_axes=("x", "y"), output_axes=("x", "y"))
        xy = xy @ m[:2, :2].T + m[:2, 2]
        if diameter is not None:
            diameter *= float(np.sqrt(abs(np.linalg.det(m[:2, :2]))))
        if image_out != "":
            image_file = _export_image(
                element, Path(image_out) if image_out else store.with_name(lib + ".image.ome.tif")
            )
    rows.obsm["spatial"] = xy
    for col in (attrs["region_key"], attrs["instance_key"]):
        rows.obs[f"sd_{col}"] = rows.obs.pop(col).astype(str)
    rows.obs["section"] = lib
    rows.obs["patient"] = lib
    rows.uns.pop("spatialdata_attrs", None)
    rows.uns["spatial"] = spatial_uns(
        lib, source_image_path=image_file, scalefactors={"spot_diameter_fullres": diameter} if diameter else {}
    )
    rows.var_names_make_unique()
    validate_sample(rows, store)
    return rows


def _export_image(element: Any, path: Path) -> Path:
    """Level 0 of an image element (``c, y, x``) as a pyramidal OME-TIFF (written once, atomically)."""
    from .wsi_write import write_pyramid_tiff

    if path.is_file():
        return path
    children = getattr(element, "children", None)
    level0 = next(iter(element["scale0"].ds.values())) if children and "scale0" in children else element
    array = np.asarray(level0.transpose("y", "x", "c").data)
    if array.dtype != np.uint8:
        hi = float(array.max()) or 1.0
        array = (array.astype(np.float32) * (255.0 / hi) if hi > 255 else array).astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return write_pyramid_tiff(path, array[..., :3], tile=256, compression="zlib")


def write_spatialdata(
    pred: Any, store: str | os.PathLike, *, image: str = "reference", overwrite: bool = False, shape: str | None = None
) -> Path:
    """Write predictions (or any sample) as a SpatialData store, atomically.

    Parameters
    ----------
    pred
        Predictions (``X``, ``obsm['spatial']`` full-res px, ``obs``) — or a sample.
    store
        ``.zarr`` folder to write.
    image
        ``"reference"`` (the slide's path in ``uns['mclstexp']['source_image_path']``), ``"embed"``
        (the slide as a multiscale image element ``slide``), or ``"none"``.
    shape
        ``"circle"`` (spots) or ``"square"`` (bins/tiles); default: squares when the data lie on a
        bin/tile grid, else circles.

    Returns
    -------
    pathlib.Path
        The store.
    """
    sd = _require()
    import geopandas as gpd
    from shapely import box
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity

    from ..raster import raster_of

    store = Path(store).expanduser()
    if store.exists() and not overwrite:
        raise InputError("already exists (add --overwrite to replace it)", store)
    if image not in ("reference", "embed", "none"):
        raise InputError(f"image must be reference, embed or none, not {image!r}")
    lib = library_id(pred)
    xy = spot_xy(pred)
    raster = raster_of(pred)
    shape = shape or ("square" if raster is not None else "circle")
    region = f"{lib}_{'bins' if shape == 'square' else 'spots'}"
    ident = {"global": Identity()}
    if shape == "square":
        edge = (
            float(np.sqrt(abs(np.linalg.det(raster.grid_affine[:, :2]))))
            if raster is not None
            else float(spot_diameter_px(pred) or 1.0)
        )
        h = edge / 2
        geoms = box(xy[:, 0] - h, xy[:, 1] - h, xy[:, 0] + h, xy[:, 1] + h)
        shapes = ShapesModel.parse(gpd.GeoDataFrame(geometry=geoms, index=np.arange(len(xy))), transformations=ident)
    else:
        radius = np.full(len(xy), float(spot_diameter_px(pred) or 1.0) / 2)
        shapes = ShapesModel.parse(xy, geometry=0, radius=radius, index=np.arange(len(xy)), transformations=ident)
    table = pred.copy()
    table.obs = table.obs.copy()
    table.obs.index = table.obs.index.astype(str)
    table.obs["region"] = pd.Categorical([region] * table.n_obs)
    table.obs["instance_id"] = np.arange(table.n_obs)
    info = dict(table.uns.get("mclstexp", {}) or {})
    slide = image_path(pred)
    if slide is not None:
        info["source_image_path"] = str(slide)
    table.uns = {"mclstexp": info} if info else {}
    table = TableModel.parse(table, region=region, region_key="region", instance_key="instance_id")
    images = {}
    if image == "embed":
        if slide is None or not slide.is_file():
            raise MissingInputError(
                "image='embed' needs the slide, which this sample does not name or is missing", slide
            )
        from .wsi import open_slide

        with open_slide(slide) as s:
            rgb = np.asarray(s.read_region(0, 0, s.shape[1], s.shape[0]))
        images["slide"] = Image2DModel.parse(
            rgb.transpose(2, 0, 1),
            dims=("c", "y", "x"),
            transformations=ident,
            scale_factors=[2] * max(0, int(np.log2(max(rgb.shape[:2]) / 512))),
            chunks=(3, 1024, 1024),
        )
    sdata = sd.SpatialData(images=images, shapes={region: shapes}, tables={"table": table})
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{store.name}.", suffix=".part", dir=store.parent))
    try:
        shutil.rmtree(tmp)
        sdata.write(tmp)
        if store.exists():
            shutil.rmtree(store)
        os.replace(tmp, store)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return store
