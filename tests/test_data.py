"""Data loaders: shapes, ranges, exact values where they can be known, and clear errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from began_lite.data import load_digits, load_faces, load_image_folder, resize
from began_lite.mixtures import mixture_2d, mixture_modes


# --------------------------------------------------------------------------- digits
@pytest.fixture(scope="module")
def sk_digits():
    from sklearn.datasets import load_digits as sk_load
    return sk_load()


@pytest.mark.parametrize("size", [8, 16, 32])
def test_load_digits_shape_and_range(size):
    x = load_digits(size)
    assert x.shape == (1797, 1, size, size)
    assert x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_load_digits_8x8_exact_values(sk_digits):
    x = load_digits(8)
    # Values 0..16 map to v / 16 * 2 - 1 = v / 8 - 1: exact in float32.
    expected = torch.from_numpy((sk_digits.images / 16.0 * 2.0 - 1.0).astype(np.float32)).unsqueeze(1)
    assert torch.equal(x, expected)
    assert x.min() == -1.0 and x.max() == 1.0


def test_load_digits_labels(sk_digits):
    x, y = load_digits(8, return_labels=True)
    assert y.shape == (1797,) and y.dtype == torch.int64
    assert sorted(y.unique().tolist()) == list(range(10))
    assert torch.equal(y, torch.from_numpy(sk_digits.target).long())
    assert x.shape[0] == y.shape[0]


def test_load_digits_upsampled_keeps_the_mean_ink():
    # Upsampling interpolates between pixels and invents no detail: each image's mean ink
    # barely moves (only the clamped border rows and columns are weighted differently).
    small, big = load_digits(8), load_digits(16)
    assert torch.allclose(small.mean(dim=(1, 2, 3)), big.mean(dim=(1, 2, 3)), atol=0.05)


@pytest.mark.parametrize("size", [3, 2048, 16.0, True])
def test_load_digits_bad_size(size):
    with pytest.raises(ValueError, match=r"^image_size"):
        load_digits(size)


# --------------------------------------------------------------------------- faces
@pytest.mark.parametrize("size", [16, 32])
def test_load_faces(size):
    x = load_faces(size)
    assert x.shape == (100, 1, size, size)
    assert x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.std() > 0.1  # real images, not a constant


# --------------------------------------------------------------------------- image folder
RNG = np.random.default_rng(0)
WIDE = RNG.integers(0, 256, size=(16, 48, 3), dtype=np.uint8)  # (H, W, 3): 48 wide, 16 tall
GREY = RNG.integers(0, 256, size=(40, 16), dtype=np.uint8)  # 16 wide, 40 tall


def striped(width: int, height: int) -> Image.Image:
    """Left third red, middle third green, right third blue (width = 3 * height): the centre crop is green."""
    a = np.zeros((height, width, 3), dtype=np.uint8)
    a[:, : width // 3, 0] = 255
    a[:, width // 3: 2 * width // 3, 1] = 255
    a[:, 2 * width // 3:, 2] = 255
    return Image.fromarray(a)


@pytest.fixture
def folder(tmp_path):
    """a.png: random RGB 48x16; b.jpg: striped RGB 90x30; sub/c.png: random grey 16x40; notes.txt ignored."""
    Image.fromarray(WIDE).save(tmp_path / "a.png")
    striped(90, 30).save(tmp_path / "b.jpg", quality=95)
    (tmp_path / "sub").mkdir()
    Image.fromarray(GREY).save(tmp_path / "sub" / "c.png")  # 2-D uint8: mode "L"
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def to_unit(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 255.0 * 2.0 - 1.0)


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("size", [8, 16])
def test_load_image_folder_shapes_and_range(folder, channels, size):
    x = load_image_folder(folder, size, channels=channels)
    assert x.shape == (3, channels, size, size)
    assert x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_load_image_folder_centre_crop_is_exact(folder):
    # At image_size 16 the crop of the 48x16 image is already 16x16, so no resampling:
    # the output is exactly the middle 16 columns (16..31). Files are read sorted: a.png first.
    x = load_image_folder(folder, 16, channels=3)
    expected = to_unit(WIDE[:, 16:32]).permute(2, 0, 1)  # (3, 16, 16)
    torch.testing.assert_close(x[0], expected, rtol=0, atol=1e-6)


def test_load_image_folder_centre_crop_of_a_tall_grey_image(folder):
    # 16 wide, 40 tall: the crop keeps rows 12..27.
    x = load_image_folder(folder, 16, channels=1)
    torch.testing.assert_close(x[2, 0], to_unit(GREY[12:28]), rtol=0, atol=1e-6)
    # Read as RGB, a grey image gives three equal channels.
    rgb = load_image_folder(folder, 16, channels=3)
    assert torch.equal(rgb[2, 0], rgb[2, 1]) and torch.equal(rgb[2, 0], rgb[2, 2])
    torch.testing.assert_close(rgb[2, 0], to_unit(GREY[12:28]), rtol=0, atol=1e-6)


def test_load_image_folder_crop_then_resize(folder):
    # The 90x30 striped jpg: the 30x30 centre crop is the green third; resized to 8x8 it is
    # still green everywhere (JPEG noise aside): R, B near -1 and G near +1.
    x = load_image_folder(folder, 8, channels=3)[1]
    assert (x[0] < -0.8).all() and (x[1] > 0.8).all() and (x[2] < -0.8).all()


def test_load_image_folder_png_crop_then_resize(tmp_path):
    # A lossless version: every pixel of the green crop is pure green after resizing.
    striped(93, 31).save(tmp_path / "s.png")
    x = load_image_folder(tmp_path, 8, channels=3)
    expected = torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1).expand(3, 8, 8)
    torch.testing.assert_close(x[0], expected, rtol=0, atol=1e-6)


def test_load_image_folder_uppercase_extension(tmp_path):
    Image.fromarray(WIDE).save(tmp_path / "UPPER.PNG")
    assert load_image_folder(tmp_path, 8).shape == (1, 3, 8, 8)


def test_load_image_folder_16_bit_png_is_scaled(tmp_path):
    ramp = (np.arange(16 * 16).reshape(16, 16) * 256).astype(np.uint16)  # 0 .. 65280
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    x = load_image_folder(tmp_path, 16, channels=1)  # crop is the whole image: no resampling
    expected = torch.from_numpy(ramp.astype(np.float32) / 65535.0 * 2.0 - 1.0)
    torch.testing.assert_close(x[0, 0], expected, rtol=0, atol=2 / 255)


def test_load_image_folder_limit(folder):
    x_all = load_image_folder(folder, 8)
    x_two = load_image_folder(folder, 8, limit=2)
    assert x_two.shape[0] == 2
    assert torch.equal(x_two, x_all[:2])


def test_load_image_folder_accepts_str_path(folder):
    assert load_image_folder(str(folder), 8).shape == (3, 3, 8, 8)


def test_load_image_folder_missing(tmp_path):
    with pytest.raises(ValueError, match=r"does not exist"):
        load_image_folder(tmp_path / "nope", 8)


def test_load_image_folder_file_instead_of_folder(folder):
    with pytest.raises(ValueError, match=r"a\.png.*is not a folder"):
        load_image_folder(folder / "a.png", 8)


def test_load_image_folder_empty(tmp_path):
    with pytest.raises(ValueError, match=r"holds no images"):
        load_image_folder(tmp_path, 8)


def test_load_image_folder_only_non_images(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"holds no images"):
        load_image_folder(tmp_path, 8)


def test_load_image_folder_corrupt_png_named(folder):
    (folder / "sub" / "broken.png").write_bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"1 unreadable image.*broken\.png"):
        load_image_folder(folder, 8)


def test_load_image_folder_truncated_png_named(folder):
    data = (folder / "a.png").read_bytes()
    (folder / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.png"):
        load_image_folder(folder, 8)


@pytest.mark.parametrize("kwargs, pattern", [
    pytest.param(dict(limit=0), r"^limit", id="limit-0"),
    pytest.param(dict(limit=-1), r"^limit", id="limit-negative"),
    pytest.param(dict(limit=True), r"^limit", id="limit-bool"),
    pytest.param(dict(limit=1.5), r"^limit", id="limit-float"),
    pytest.param(dict(channels=2), r"^channels", id="channels-2"),
    pytest.param(dict(image_size=2), r"^image_size", id="size-2"),
])
def test_load_image_folder_bad_arguments(folder, kwargs, pattern):
    kwargs = {"image_size": 8, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        load_image_folder(folder, **kwargs)


# --------------------------------------------------------------------------- mixtures
def test_ring_modes_by_hand():
    modes = mixture_modes("ring")
    assert modes.shape == (8, 2)
    expected = torch.tensor([[2 * math.cos(i * math.pi / 4), 2 * math.sin(i * math.pi / 4)] for i in range(8)])
    torch.testing.assert_close(modes, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(modes.norm(dim=1), torch.full((8,), 2.0))


def test_grid_modes_by_hand():
    modes = mixture_modes("grid")
    assert modes.shape == (25, 2)
    assert {tuple(m) for m in modes.tolist()} == {(a, b) for a in (-4.0, -2.0, 0.0, 2.0, 4.0)
                                                  for b in (-4.0, -2.0, 0.0, 2.0, 4.0)}


@pytest.mark.parametrize("kind, n_modes, std", [("ring", 8, 0.02), ("grid", 25, 0.05)])
def test_mixture_samples_near_their_modes(kind, n_modes, std):
    x, labels = mixture_2d(kind, 4000, seed=3, return_labels=True)
    assert x.shape == (4000, 2) and x.dtype == torch.float32
    assert labels.shape == (4000,)
    assert set(labels.tolist()) == set(range(n_modes))  # every mode drawn
    dist = (x - mixture_modes(kind)[labels]).norm(dim=1)
    # |N(0, std^2 I_2)| exceeds 6 std with probability exp(-18)
    assert dist.max() < 6 * std
    # E|N(0, std^2 I_2)|^2 = 2 std^2
    assert dist.square().mean().item() == pytest.approx(2 * std ** 2, rel=0.1)
    # each sample is nearer its own mode than any other
    nearest = torch.cdist(x, mixture_modes(kind)).argmin(dim=1)
    assert torch.equal(nearest, labels)


def test_mixture_custom_std_and_seed():
    a = mixture_2d("ring", 500, std=0.1, seed=5)
    b = mixture_2d("ring", 500, std=0.1, seed=5)
    c = mixture_2d("ring", 500, std=0.1, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    _, labels = mixture_2d("ring", 500, std=0.1, seed=5, return_labels=True)
    spread = (a - mixture_modes("ring")[labels]).square().sum(1).mean().item()
    assert spread == pytest.approx(2 * 0.1 ** 2, rel=0.15)


@pytest.mark.parametrize("kwargs, pattern", [
    pytest.param(dict(kind="spiral"), r"^kind", id="kind"),
    pytest.param(dict(n=0), r"^n must", id="n-0"),
    pytest.param(dict(n=10.0), r"^n must", id="n-float"),
    pytest.param(dict(n=True), r"^n must", id="n-bool"),
    pytest.param(dict(std=0.0), r"^std", id="std-0"),
    pytest.param(dict(std=-0.1), r"^std", id="std-negative"),
    pytest.param(dict(std=float("nan")), r"^std", id="std-nan"),
    pytest.param(dict(std=float("inf")), r"^std", id="std-inf"),
])
def test_mixture_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        mixture_2d(**kwargs)


def test_mixture_modes_bad_kind():
    with pytest.raises(ValueError, match=r"^kind"):
        mixture_modes("spiral")


# --------------------------------------------------------------------------- resize
def test_resize_shape_and_identity():
    x = torch.rand(2, 3, 8, 8)
    assert resize(x, 8) is x
    assert resize(x, 16).shape == (2, 3, 16, 16)
    assert resize(x, 4).shape == (2, 3, 4, 4)


def test_resize_constant_stays_constant():
    x = torch.full((1, 1, 8, 8), 0.3)
    torch.testing.assert_close(resize(x, 32), torch.full((1, 1, 32, 32), 0.3))
    torch.testing.assert_close(resize(x, 4), torch.full((1, 1, 4, 4), 0.3))


def test_resize_downsample_by_two_averages_blocks():
    # Antialiased bilinear by exactly 1/2: each output pixel is a weighted mean of the 4x4
    # neighbourhood with weights (1, 3, 3, 1)/8 per axis; on a linear ramp that is the block centre.
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8).contiguous()
    out = resize(ramp, 4)
    # interior columns: centres of blocks (0,1),(2,3),(4,5),(6,7) -> 0.5, 2.5, 4.5, 6.5
    torch.testing.assert_close(out[0, 0, :, 1:3], torch.tensor([2.5, 4.5]).expand(4, 2))


@pytest.mark.parametrize("size", [0, 3, 2000, 8.0])
def test_resize_bad_size(size):
    with pytest.raises(ValueError, match=r"^image_size"):
        resize(torch.zeros(1, 1, 8, 8), size)
