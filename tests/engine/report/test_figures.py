import numpy as np
from PIL import Image

from sparsevit.report.figures import colorize, grid_png, palette_lut, rgb_image


def test_rgb_stretch_and_invalid_pixels_black():
    s2 = np.stack([np.full((4, 4), v, np.float32) for v in (100, 200, 300)])
    s2[:, 0, 0] = np.nan
    s2[0, 1, 1] = 5000
    out = rgb_image(s2, ["B02", "B03", "B04"])
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    assert (out[0, 0] == 0).all()
    assert out[1, 1, 2] == 255  # B02 is the blue channel


def test_colorize_uses_class_values_and_ignore_colour():
    lut = palette_lut(["#ff0000", "#00ff00"], values=[1, 7])
    img = colorize(np.array([[1, 7, 255]]), lut)
    assert img[0, 0].tolist() == [255, 0, 0] and img[0, 1].tolist() == [0, 255, 0]
    assert img[0, 2].tolist() == [0, 0, 0]


def test_grid_png_has_exact_class_colours(tmp_path):
    lut = palette_lut(["#123456"])
    cell = np.zeros((8, 8), np.uint8)
    path = grid_png(tmp_path / "g.png", [[colorize(cell, lut), colorize(cell, lut)]], ["a", "b"],
                    legend=[("Forest", "#123456")], cell=32)
    im = np.asarray(Image.open(path))
    assert (im.reshape(-1, 3) == [0x12, 0x34, 0x56]).all(1).sum() >= 2 * 32 * 32
    assert not list(tmp_path.glob(".*part*"))
