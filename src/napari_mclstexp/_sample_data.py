"""npe2 sample data: the offline demo slide, and one public HER2+ section downloaded on first use.

Both return napari layer data tuples: the slide as a lazy (multiscale when the file is a pyramid)
Image and the spots as Points in full-resolution ``(row, col)`` pixels, scaled to µm when the pixel
size is known.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import numpy as np

from .atomic import atomic_write_path
from .errors import MissingInputError

#: The public her2st repository (Andersson et al., Nat Commun 2021), pinned to the commits that added
#: each file so the URLs never change under us.
HER2ST_REPO = "almaan/her2st"
HER2ST_SECTION = "B4"
HER2ST_FILES = {
    # local path under the cache folder (her2st layout): (commit, path in the repository)
    "ST-cnts/B4.tsv.gz": ("e75e5c53a994726a8ad251aaf653a02d7932eb6a", "data/ST-cnts/B4.tsv.gz"),
    "ST-spotfiles/B4_selection.tsv": ("9f2260c6aa8347996955d53f0a5f06ac14c93470", "data/ST-spotfiles/B4_selection.tsv"),
    "ST-imgs/B/B4/BT10737_D2_HE.jpg": (
        "9f2260c6aa8347996955d53f0a5f06ac14c93470",
        "data/ST-imgs/B/B4/BT10737_D2_HE.jpg",
    ),
}
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
#: Large files may be stored with Git LFS; the raw URL then serves a small pointer file.
LFS_URL = "https://media.githubusercontent.com/media/{repo}/{commit}/{path}"
_LFS_POINTER = b"version https://git-lfs"


def cache_dir() -> Path:
    """Download cache: ``$MCLSTEXP_CACHE``, else ``$XDG_CACHE_HOME/napari-mclstexp``, else
    ``~/.cache/napari-mclstexp``."""
    env = os.environ.get("MCLSTEXP_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "napari-mclstexp"


def _fetch(url: str, dest: Path, timeout: float) -> bytes:
    """Download ``url`` into ``dest`` atomically; returns the first bytes (to spot LFS pointers)."""
    with urlopen(url, timeout=timeout) as response, atomic_write_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            shutil.copyfileobj(response, fh, length=1 << 20)
        with open(tmp, "rb") as fh:
            return fh.read(64)


def download_her2st_section(root: str | os.PathLike | None = None, *, timeout: float = 60.0) -> Path:
    """Download the HER2+ section B4 (image, spot file, counts) into ``root`` unless already there.

    Parameters
    ----------
    root
        Folder laid out like the her2st repository's ``data/`` (default ``cache_dir() / "her2st"``).
    timeout
        Seconds to wait for the server per file.

    Returns
    -------
    pathlib.Path
        ``root``, readable by :func:`napari_mclstexp.io.her2st.read_her2st_section`.

    Raises
    ------
    MissingInputError
        When a file cannot be downloaded (e.g. offline); the problem first, then the files to copy by hand.
    """
    root = Path(root) if root is not None else cache_dir() / "her2st"
    for local, (commit, repo_path) in HER2ST_FILES.items():
        dest = root / local
        if dest.is_file() and dest.stat().st_size > 0:
            continue
        url = RAW_URL.format(repo=HER2ST_REPO, commit=commit, path=repo_path)
        try:
            head = _fetch(url, dest, timeout)
            if head.startswith(_LFS_POINTER):
                _fetch(LFS_URL.format(repo=HER2ST_REPO, commit=commit, path=repo_path), dest, timeout)
        except (URLError, OSError, TimeoutError) as err:
            files = ", ".join(p for _c, p in HER2ST_FILES.values())
            reason = getattr(err, "reason", err)
            raise MissingInputError(
                f"could not download the public HER2+ section {HER2ST_SECTION} ({reason}); offline? Try again "
                f"when online, or copy {files} from github.com/{HER2ST_REPO} into this folder",
                root,
            ) from err
    return root


def _region_colours(adata) -> np.ndarray | None:
    """RGBA face colours (N, 4) of the spots by ``obs['annotation']``, or ``None`` without labels."""
    if "annotation" not in adata.obs:
        return None
    from .io.export import category_colors

    codes = adata.obs["annotation"].astype("category").cat.codes.to_numpy()
    rgb = category_colors(int(codes.max()) + 1)[codes].astype(np.float32) / 255.0
    return np.concatenate([rgb, np.ones((len(rgb), 1), np.float32)], axis=1)


def _layers_for(adata, spots_name: str) -> list[tuple]:
    from .layer_data import sample_layers

    layers = sample_layers(adata)
    data, kwargs, kind = layers[-1]
    kwargs = dict(kwargs, name=spots_name)
    if "annotation" in adata.obs:
        kwargs["features"] = dict(kwargs["features"], annotation=adata.obs["annotation"].astype(str).to_numpy())
        kwargs["face_color"] = _region_colours(adata)
    layers[-1] = (data, kwargs, kind)
    return layers


def make_demo_sample() -> list[tuple]:
    """The offline demo slide (lazy multiscale Image) and its spots (Points coloured by tissue region)."""
    from .workflows.demo import load_demo_sample

    return _layers_for(load_demo_sample(), "demo spots (true regions)")


def her2st_sample() -> list[tuple]:
    """A public HER2+ breast cancer section (her2st B4): H&E image and spots, downloaded on first use."""
    from .io.her2st import read_her2st_section

    root = download_her2st_section()
    adata = read_her2st_section(root, HER2ST_SECTION)
    return _layers_for(adata, f"her2st {HER2ST_SECTION} spots")
