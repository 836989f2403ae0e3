"""gardenpath.data: digits split, k-shot, canvas, synthetic batches, loaders on generated files."""

import pickle
import struct
import zlib

import numpy as np
import pytest
import torch

from gardenpath.data import (
    k_shot,
    load_cifar10,
    load_digits_split,
    load_image_folder,
    place_on_canvas,
    read_image,
    synthetic_imagenet_batch,
)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def write_png(path, img: np.ndarray) -> None:
    """Write (H, W, C) uint8 as PNG, cycling through all five row filters."""
    h, w, c = img.shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = img.reshape(h, w * c).astype(int)
    raw = b""
    prev = [0] * (w * c)
    for r in range(h):
        f = r % 5
        line = rows[r].tolist()
        enc = []
        for i, v in enumerate(line):
            a = line[i - c] if i >= c else 0
            b = prev[i]
            cc = prev[i - c] if i >= c else 0
            pred = [0, a, b, (a + b) // 2, _paeth(a, b, cc)][f]
            enc.append((v - pred) & 0xFF)
        raw += bytes([f] + enc)
        prev = line

    def chunk(t: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(data)


def test_digits_split_is_seeded_scaled_and_stratified():
    a = load_digits_split(seed=3)
    b = load_digits_split(seed=3)
    c = load_digits_split(seed=4)
    xtr, xte, ytr, yte = a
    assert np.array_equal(a[1], b[1]) and not np.array_equal(a[1], c[1])
    assert xtr.shape[1] == 64 and len(xtr) + len(xte) == 1797
    assert abs(len(xte) / 1797 - 0.3) < 0.01
    assert xtr.min() == 0.0 and xtr.max() == 1.0 and xtr.dtype == np.float32
    assert set(np.bincount(yte)) <= {52, 53, 54, 55, 56}  # 30% of 174..183 per class


def test_k_shot_draws_k_per_class():
    xtr, _, ytr, _ = load_digits_split()
    x, y = k_shot(xtr, ytr, 3, seed=1)
    assert x.shape == (30, 64)
    assert np.all(np.bincount(y) == 3)
    x2, _ = k_shot(xtr, ytr, 3, seed=1)
    assert np.array_equal(x, x2)
    with pytest.raises(ValueError, match="fewer than"):
        k_shot(xtr, ytr, 10_000)


def test_place_on_canvas_moves_digit_intact():
    xtr, _, _, _ = load_digits_split()
    canv = place_on_canvas(xtr[:2], canvas=16, offsets=[(0, 0), (8, 5)])
    img = canv.reshape(2, 16, 16)
    assert np.array_equal(img[0, :8, :8].ravel(), xtr[0])
    assert np.array_equal(img[1, 8:, 5:13].ravel(), xtr[1])
    assert img[1].sum() == pytest.approx(xtr[1].sum())
    with pytest.raises(ValueError):
        place_on_canvas(xtr[:1], canvas=16, offsets=(9, 0))


def test_synthetic_batch_shapes_and_seed():
    x, y = synthetic_imagenet_batch(4, in_size=32, num_classes=10, seed=5)
    x2, _ = synthetic_imagenet_batch(4, in_size=32, num_classes=10, seed=5)
    assert x.shape == (4, 3, 32, 32) and y.shape == (4,) and int(y.max()) < 10
    assert torch.equal(x, x2)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_reader_round_trips_every_filter(tmp_path, channels):
    rng = np.random.default_rng(channels)
    img = rng.integers(0, 256, (7, 9, channels), dtype=np.uint8)
    write_png(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png"), img)


def test_image_folder_of_jpegs_loads(tmp_path):
    # a user's ImageFolder is usually JPEGs: colour and grey, odd sizes, resized on load
    from PIL import Image

    for cls, colour in (("red", (250, 10, 10)), ("blue", (10, 10, 250))):
        (tmp_path / cls).mkdir()
        for i, size in enumerate(((20, 14), (9, 33))):
            Image.new("RGB", size, colour).save(tmp_path / cls / f"{i}.jpg", quality=95)
    Image.new("L", (12, 12), 128).save(tmp_path / "blue" / "grey.JPEG")
    x, y, classes = load_image_folder(tmp_path, size=8)
    assert classes == ["blue", "red"]
    assert x.shape == (5, 3, 8, 8) and y.tolist() == [0, 0, 0, 1, 1]
    red = x[3].mean(dim=(1, 2))
    assert red[0] > 0.9 and red[1] < 0.1 and red[2] < 0.1
    assert torch.allclose(x[2], torch.full((3, 8, 8), 128 / 255), atol=0.02)  # grey.JPEG


def test_unreadable_image_names_the_file(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        load_image_folder(tmp_path)


def test_image_folder_loads_png_pgm_npy(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    write_png(tmp_path / "cat" / "1.png", rng.integers(0, 256, (10, 10, 3), dtype=np.uint8))
    grey = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    (tmp_path / "cat" / "2.pgm").write_bytes(b"P5\n# c\n8 8\n255\n" + grey.tobytes())
    np.save(tmp_path / "dog" / "3.npy", np.full((8, 8, 3), 255, dtype=np.uint8))
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    x, y, classes = load_image_folder(tmp_path, size=8)
    assert classes == ["cat", "dog"]
    assert x.shape == (3, 3, 8, 8) and y.tolist() == [0, 0, 1]
    assert torch.allclose(x[1, 0], torch.as_tensor(grey / 255.0, dtype=torch.float32))
    assert torch.all(x[2] == 1.0)


def test_image_folder_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_image_folder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path)


def _cifar_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
         b"labels": rng.integers(0, 10, n).tolist(), b"batch_label": b"x"}
    with open(path, "wb") as fh:
        pickle.dump(d, fh)
    return d


def test_cifar10_loader_reads_standard_batches(tmp_path):
    d1 = _cifar_batch(tmp_path / "data_batch_1", 5, 1)
    _cifar_batch(tmp_path / "data_batch_2", 4, 2)
    dt = _cifar_batch(tmp_path / "test_batch", 3, 3)
    xtr, xte, ytr, yte = load_cifar10(tmp_path)
    assert xtr.shape == (9, 3, 32, 32) and xte.shape == (3, 3, 32, 32)
    assert ytr[:5].tolist() == d1[b"labels"] and yte.tolist() == dt[b"labels"]
    # row-major channel planes: the first 1024 bytes are the red plane
    assert np.allclose(xtr[0, 0].ravel(), d1[b"data"][0, :1024] / 255.0)


def test_cifar10_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        load_cifar10(tmp_path / "missing_dir")
    with pytest.raises(FileNotFoundError, match="data_batch"):
        load_cifar10(tmp_path)
    _cifar_batch(tmp_path / "data_batch_1", 2, 0)
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="test_batch"):
        load_cifar10(tmp_path)
