"""`make data` with a zip: a bomb, a zip too large, a damaged zip or one without test images is refused in
one line and leaves nothing behind; a good zip appears whole, from a temporary folder."""

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from simpsons_lib.pipeline import kaggle

REPO = Path(__file__).resolve().parent.parent


def jpeg(shade: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (24, 24), (shade, 80, 160)).save(b, "JPEG")
    return b.getvalue()


def dataset_zip(path: Path, test: bool = True, extra: dict | None = None, method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as z:
        for c in ("bart_simpson", "lisa_simpson"):
            for i in range(3):
                z.writestr(f"train/simpsons_dataset/{c}/pic_{i:04d}.jpg", jpeg(40 * i))
        if test:
            for i in range(2):
                z.writestr(f"testset/testset/img{i}.jpg", jpeg(7 * i))
            z.writestr("sample_submission.csv", "Id,Expected\nimg0.jpg,bart_simpson\nimg1.jpg,bart_simpson\n")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def unpack_cli(zip_path: Path, out: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simpsons_lib.pipeline.kaggle", "--zip", str(zip_path), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, **env})


def refused_in_one_line(result, *words) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def left_in(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_a_good_zip_is_unpacked_whole_and_leaves_no_temporary_folder(tmp_path):
    out = tmp_path / "kaggle"
    result = unpack_cli(dataset_zip(tmp_path / "d.zip"), out)
    assert result.returncode == 0, result.stderr
    assert left_in(out) == ["sample_submission.csv", "testset", "train"]
    assert kaggle.unpack(tmp_path / "d.zip", out).test_dir == out / "testset" / "testset"  # again: replaced
    assert left_in(out) == ["sample_submission.csv", "testset", "train"]


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    bomb = dataset_zip(tmp_path / "bomb.zip", extra={"train/zeros.bin": bytes(20 * 2**20)})  # ~20 KB -> 20 MiB
    assert bomb.stat().st_size < 200_000
    out = tmp_path / "kaggle"
    refused_in_one_line(unpack_cli(bomb, out), "bomb.zip", "zip bomb")
    assert left_in(out) == []


def test_a_zip_larger_than_the_cap_is_refused(tmp_path):
    big = dataset_zip(tmp_path / "big.zip", extra={"train/noise.bin": os.urandom(3 * 2**20)})
    out = tmp_path / "kaggle"
    refused_in_one_line(unpack_cli(big, out, SIMPSONS_UNZIP_MAX_BYTES=str(2**20)), "big.zip", "more than the 1 MiB")
    assert left_in(out) == []
    with pytest.raises(kaggle.UnpackError, match="more than"):
        kaggle.unpack(big, out, max_bytes=2**20)
    assert left_in(out) == []


def test_a_zip_without_test_images_is_not_ready(tmp_path):
    out = tmp_path / "kaggle"
    refused_in_one_line(unpack_cli(dataset_zip(tmp_path / "notest.zip", test=False), out), "no test images")
    assert left_in(out) == []


def test_a_crc_error_leaves_nothing_partial(tmp_path):
    z = dataset_zip(tmp_path / "crc.zip", method=zipfile.ZIP_STORED)
    data = bytearray(z.read_bytes())
    last = jpeg(7)  # the last test image, stored: flip a byte in its middle
    at = data.rindex(last) + len(last) // 2
    data[at] ^= 0xFF
    z.write_bytes(bytes(data))
    out = tmp_path / "kaggle"
    out.mkdir()
    (out / "journey-springfield.zip").write_bytes(b"kept")  # what was there stays
    refused_in_one_line(unpack_cli(z, out), "crc.zip", "damaged")
    assert left_in(out) == ["journey-springfield.zip"]


def test_zip_slip_and_a_broken_zip_are_one_line(tmp_path):
    evil = dataset_zip(tmp_path / "evil.zip", extra={"../outside.txt": "x"})
    refused_in_one_line(unpack_cli(evil, tmp_path / "out"), "outside")
    assert not (tmp_path / "outside.txt").exists()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\3\4 not really")
    refused_in_one_line(unpack_cli(broken, tmp_path / "out2"), "not a valid zip")
