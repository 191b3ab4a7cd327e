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


def test_scene_report_writes_a_grid_per_scene_and_a_table(tmp_path):
    from sparsevit.report.scenes import SceneMaps, write_scene_report
    truth = np.zeros((16, 16), np.uint8)
    truth[:, 8:] = 1
    good, bad = truth.copy(), np.zeros_like(truth)
    scene = SceneMaps(id="a/b 1", rgb=np.zeros((16, 16, 3), np.uint8),
                      maps={"gradcam": bad, "attention": good}, truth=truth, labels=[0, 1])
    md = write_scene_report(tmp_path, [scene], ["Forest", "River"], ["#00ff00", "#0000ff"],
                            scores={"attention": {"miou": 0.5, "overall_accuracy": 0.6,
                                                  "average_accuracy": 0.7, "images": 3}}, cell=32)
    text = md.read_text()
    assert "| attention | 0.5000 | 0.6000 | 0.7000 | 3 |" in text
    assert "![a/b 1](scene_a_b_1.png)" in text and "Forest, River" in text
    im = np.asarray(Image.open(tmp_path / "scene_a_b_1.png"))
    # the River half of the truth and of the right map are drawn in River's exact colour
    assert (im.reshape(-1, 3) == [0, 0, 255]).all(1).sum() >= 2 * 16 * 32


def test_grid_png_titled_legends_each_get_their_rows(tmp_path):
    lut = palette_lut(["#123456"])
    cell = colorize(np.zeros((8, 8), np.uint8), lut)
    flat = np.asarray(Image.open(grid_png(tmp_path / "a.png", [[cell]], ["a"],
                                          legend=[("A", "#ff0000")], cell=32)))
    two = np.asarray(Image.open(grid_png(tmp_path / "b.png", [[cell]], ["a"], cell=32, legends=[
        ("detailed", [("A", "#ff0000"), ("B", "#00ff00")]), ("coarse", [("C", "#0000ff")])])))
    # one legend column at this width: 2 titles + 3 entries vs 1 entry, one more block gap
    assert two.shape[0] == flat.shape[0] + 4 * 20 + 10
    for rgb in ([255, 0, 0], [0, 255, 0], [0, 0, 255]):
        assert (two.reshape(-1, 3) == rgb).all(1).sum() >= 100  # every swatch is drawn
