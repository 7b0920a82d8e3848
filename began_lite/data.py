"""Data: real images that ship offline and image folders you bring (2-D mixtures: :mod:`.mixtures`).

Every image loader returns a float32 tensor ``(N, C, H, W)`` scaled to [-1, 1].

* :func:`load_digits`: the 1797 real 8x8 handwritten digits of ``sklearn.datasets``.
* :func:`load_faces`: the 100 real 25x25 grey faces of ``skimage.data.lfw_subset``.
* :func:`load_image_folder`: any folder of images (CelebA, ...), read with PIL,
  centre-cropped to a square and resized.

Resizing of the bundled arrays is bilinear with antialiasing
(``torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False)``),
so upsampling 8x8 digits to 16x16 interpolates between pixels and invents no detail.
Image folders are resized with PIL's Lanczos filter after the centre crop.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["load_digits", "load_faces", "load_image_folder", "resize", "fingerprint",
           "check_images", "check_training_data", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _check_size(image_size, name: str = "image_size") -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or not 4 <= image_size <= 1024:
        raise ValueError(f"{name} must be an integer in [4, 1024], got {image_size!r}")
    return int(image_size)


def resize(x: torch.Tensor, image_size: int) -> torch.Tensor:
    """Bilinear, antialiased resize of ``(N, C, H, W)`` images to ``image_size`` x ``image_size``."""
    image_size = _check_size(image_size)
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)} "
                         f"{getattr(x, 'dtype', '')}".rstrip())
    if x.shape[-1] == image_size and x.shape[-2] == image_size:
        return x
    return F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)


def _to_unit_range(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return ((x - lo) / (hi - lo) * 2.0 - 1.0).clamp_(-1.0, 1.0)


def check_images(name: str, x) -> None:
    """A non-empty float tensor of images (N, C, H, W), or a ValueError naming ``name``."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] == 0 or not x.is_floating_point():
        raise ValueError(f"{name} must be a non-empty float tensor (N, C, H, W), "
                         f"got {getattr(x, 'shape', type(x).__name__)}")


def check_training_data(config, data) -> None:
    """Images (N, C, S, S) in [-1, 1] matching the config's channels and image_size, or points
    (N, data_dim) when ``config.data_dim >= 1``; float32 like the networks, finite."""
    d = config.data_dim
    shape = tuple(getattr(data, "shape", ())) or type(data).__name__
    if isinstance(data, torch.Tensor) and data.is_floating_point() and data.dtype != torch.float32:
        raise ValueError(f"data must be float32 like the networks, got {data.dtype} (use data.float())")
    if d:
        if not isinstance(data, torch.Tensor) or data.ndim != 2 or data.shape[0] == 0 or not data.is_floating_point():
            raise ValueError(f"data must be a non-empty float tensor of points (N, {d}) to match the config "
                             f"(data_dim={d}), got {shape}")
        if data.shape[1] != d:
            raise ValueError(f"data must have shape (N, {d}) to match the config (data_dim), got {shape}")
        if not torch.isfinite(data).all():
            raise ValueError("data must be finite (it holds NaN or inf)")
        return
    if isinstance(data, torch.Tensor) and data.ndim == 2:
        raise ValueError(f"data must be images (N, C, H, W) for a config with data_dim=0; for points (N, d) "
                         f"set data_dim=d, got {shape}")
    check_images("data", data)
    expected = (config.channels, config.image_size, config.image_size)
    if tuple(data.shape[1:]) != expected:
        raise ValueError(f"data must have shape (N, {expected[0]}, {expected[1]}, {expected[2]}) to match the "
                         f"config (channels, image_size), got {tuple(data.shape)}")
    if not torch.isfinite(data).all() or data.min() < -1.0001 or data.max() > 1.0001:
        raise ValueError("data must be finite and scaled to [-1, 1]")


def load_digits(image_size: int = 16, *, return_labels: bool = False):
    """The 1797 real 8x8 digits (values 0..16) as ``(1797, 1, S, S)`` in [-1, 1]; optionally their labels.

    Ink is +1 and background -1. The images are in sklearn's order (not shuffled).
    """
    from sklearn.datasets import load_digits as _sk_digits

    image_size = _check_size(image_size)
    bunch = _sk_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32)).unsqueeze(1)  # (N, 1, 8, 8)
    x = _to_unit_range(resize(x, image_size), 0.0, 16.0)
    if return_labels:
        return x, torch.from_numpy(bunch.target.astype(np.int64))
    return x


def load_faces(image_size: int = 32) -> torch.Tensor:
    """The 100 real 25x25 grey faces of ``skimage.data.lfw_subset`` as ``(100, 1, S, S)`` in [-1, 1].

    ``lfw_subset`` holds 100 faces followed by 100 non-face patches; only the faces are returned.
    """
    from skimage.data import lfw_subset

    image_size = _check_size(image_size)
    faces = lfw_subset()[:100].astype(np.float32)  # (100, 25, 25) in [0, 1]
    x = torch.from_numpy(faces).unsqueeze(1)
    return _to_unit_range(resize(x, image_size), 0.0, 1.0)


def _list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _decode_image(path: Path, image_size: int, channels: int):
    """One file as a (S, S, channels) uint8 array, or a string saying why it could not be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode.startswith("I"):  # 16/32-bit grey: scale to 8 bits rather than clip
                deep = np.asarray(im, dtype=np.float64)
                full = 65535.0 if (im.mode.startswith("I;16") or deep.max() > 255) else 255.0
                im = Image.fromarray(np.clip(np.round(deep / full * 255.0), 0, 255).astype(np.uint8))
            im = im.convert("RGB" if channels == 3 else "L")
            w, h = im.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            im = im.crop((left, top, left + side, top + side))
            im = im.resize((image_size, image_size), Image.Resampling.LANCZOS)
            return np.asarray(im).reshape(image_size, image_size, channels)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        return f"{path} ({type(err).__name__})"


def fingerprint(dataset: str, root=None, **identity) -> dict:
    """What a run trains on, so that a checkpoint can be tied to its data (``train`` stores it).

    The bundled sets (``digits``, ``faces``): their size and a sha256 of the arrays as shipped.
    A ``folder``: the number of image files, their total size, and a sha256 of every file's
    relative name, size and bytes. Anything else (a 2-D mixture, drawn from a seed): ``identity``.
    """
    import hashlib

    h = hashlib.sha256()
    if dataset == "folder":
        files, total = _list_images(Path(root)), 0
        for f in files:
            size = f.stat().st_size
            total += size
            h.update(f"{f.relative_to(root).as_posix()}\0{size}\0".encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        return {"dataset": "folder", "files": len(files), "bytes": total, "sha256": h.hexdigest()}
    if dataset == "digits":
        from sklearn.datasets import load_digits as _sk_digits
        arrays = _sk_digits().images
    elif dataset == "faces":
        from skimage.data import lfw_subset
        arrays = lfw_subset()[:100]
    else:
        return {"dataset": dataset, **identity}
    h.update(np.ascontiguousarray(arrays).tobytes())
    return {"dataset": dataset, "n": len(arrays), "sha256": h.hexdigest()}


CACHE_FORMAT = "began_lite.folder_cache/1"
CACHE_DIR_NAME = ".began_lite_cache"  # inside the image folder
PARALLEL_FROM = 2000  # files; below this, starting worker processes costs more than it saves


def _cache_key(root: Path, files: list[Path], image_size: int, channels: int) -> str:
    """A digest of what the decoded tensor depends on: every file's name, size and time, and the sizes asked for."""
    import hashlib
    import json

    listing = []
    for f in files:
        st = f.stat()
        listing.append([str(f.relative_to(root)), st.st_size, st.st_mtime_ns])
    blob = json.dumps([CACHE_FORMAT, image_size, channels, listing]).encode()
    return hashlib.sha256(blob).hexdigest()


def _read_cache(path: Path, key: str):
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged or foreign file: decode again and replace it
        return None
    if not isinstance(state, dict) or state.get("format") != CACHE_FORMAT or state.get("key") != key:
        return None
    pixels = state.get("pixels")
    return pixels.numpy() if isinstance(pixels, torch.Tensor) and pixels.dtype == torch.uint8 else None


def _write_cache(path: Path, key: str, pixels: np.ndarray) -> None:
    from .checkpoint import atomic_write

    try:
        atomic_write(path, lambda f: torch.save({"format": CACHE_FORMAT, "key": key,
                                            "pixels": torch.from_numpy(pixels)}, f))
    except OSError:  # a read-only data folder: no cache, decode next time too
        pass


def load_image_folder(root, image_size: int = 64, *, channels: int = 3, limit: int | None = None,
                      progress: bool = False, cache: bool = False, workers: int | None = None) -> torch.Tensor:
    """Every image under ``root`` (recursively) as ``(N, channels, S, S)`` in [-1, 1].

    Each image is centre-cropped to a square, resized to ``image_size`` with Lanczos, and
    converted to RGB (``channels=3``) or grey (``channels=1``). Files with an image
    extension that PIL cannot read are reported by name in one ``ValueError``.
    ``limit`` keeps the first ``limit`` files (sorted by path).

    ``cache=True`` decodes a folder once: the pixels (uint8, a quarter of the float tensor)
    are saved in ``root/.began_lite_cache/`` under a key made of every file's name, size and
    modification time, ``image_size`` and ``channels``; a later call with the same folder
    and sizes reads that file instead (``torch.load(weights_only=True)``), and any change to
    the folder decodes it again. A folder that cannot be written to is simply not cached.
    ``workers`` processes decode in parallel (default: up to 8 when there are 2000 files or
    more, else none).
    """
    image_size = _check_size(image_size)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be None or an integer >= 1, got {limit!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ValueError(f"workers must be None or an integer >= 0, got {workers!r}")
    root = Path(root)
    if not root.exists():
        raise ValueError(f"data folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise ValueError(f"data folder {str(root)!r} is not a folder")
    files = _list_images(root)
    if not files:
        raise ValueError(f"data folder {str(root)!r} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    if limit is not None:
        files = files[:limit]
    out = None
    if cache:
        key = _cache_key(root, files, image_size, channels)
        cache_file = root / CACHE_DIR_NAME / f"{key[:32]}.pt"
        out = _read_cache(cache_file, key)
    if out is None:
        out = _decode_all(root, files, image_size, channels, progress, workers)
        if cache:
            _write_cache(cache_file, key, out)
    x = torch.from_numpy(out).permute(0, 3, 1, 2).float()  # (N, C, S, S) in 0..255
    return _to_unit_range(x, 0.0, 255.0)


def _decode_all(root: Path, files: list[Path], image_size: int, channels: int, progress: bool,
                workers: int | None) -> np.ndarray:
    """(N, S, S, channels) uint8 for ``files``, in order; one ValueError naming every unreadable file."""
    import os
    from functools import partial

    if workers is None:
        workers = min(8, os.cpu_count() or 1) if len(files) >= PARALLEL_FROM else 0
    decode = partial(_decode_image, image_size=image_size, channels=channels)
    pool = None
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # "spawn": a fresh interpreter per worker, safe whatever threads this process has started.
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(decode, files, chunksize=64)
    else:
        results = map(decode, files)
    if progress:
        from tqdm.auto import tqdm
        results = tqdm(results, total=len(files), desc="reading images", leave=False)
    out = np.empty((len(files), image_size, image_size, channels), dtype=np.uint8)
    bad: list[str] = []
    try:
        for i, r in enumerate(results):
            if isinstance(r, str):
                bad.append(r)
            else:
                out[i] = r
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValueError(f"data folder {str(root)!r} has {len(bad)} unreadable image(s): {shown}")
    return out
