"""Local files in the media columns, at plan time: found relative to the experiment, checked
for existence, type (by their first bytes) and the API's size limits, each problem named by
file, row and column; the request carries the file's sha256, never a path or a URL."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import Result
from PIL import Image

from runner.errors import ExperimentError
from runner.grid.plan import make_plan
from runner.localfiles import LocalFiles, hash_file, sniff

PNG_HEAD = b"\x89PNG\r\n\x1a\n" + bytes(24)
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
MP3_HEAD = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(20)


def image(path: Path, colour: tuple[int, int, int] = (30, 60, 200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (400, 300), colour).save(path)
    return path


def sparse(path: Path, head: bytes, size: int) -> Path:
    """A file of ``size`` bytes that starts with ``head`` and takes no room on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ExperimentError) as caught:
        make_plan(path)
    return [str(p) for p in caught.value.problems]


def test_a_path_is_read_relative_to_the_experiment_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image(tmp_path / "shoot" / "images" / "watch.png")
    grid = tmp_path / "shoot" / "grid.csv"
    grid.write_text("prompt,image_urls\nA watch,./images/watch.png\n")
    monkeypatch.chdir(tmp_path)
    plan = make_plan(grid)
    (request,) = [v.request for v in plan.expansion.variants]
    sha = hash_file(tmp_path / "shoot" / "images" / "watch.png")
    assert request.image_urls == (f"sha256:{sha}",)
    assert request.mode == "image"  # one image: image-to-video, as with a URL
    (found,) = plan.expansion.files.values()
    assert found.path == tmp_path / "shoot" / "images" / "watch.png" and found.mime == "image/png"


def test_the_same_picture_under_another_name_is_the_same_variant_and_a_new_picture_is_not(
    tmp_path: Path,
) -> None:
    image(tmp_path / "a" / "watch.png")
    shutil.copy(tmp_path / "a" / "watch.png", tmp_path / "b.png")
    image(tmp_path / "other.png", (200, 0, 0))
    grid = tmp_path / "grid.csv"
    grid.write_text("prompt,image_urls\nA watch,a/watch.png\nA watch,b.png\nA watch,other.png\n")
    plan = make_plan(grid)
    assert len(plan.expansion.variants) == 2 and plan.expansion.duplicates == 1
    assert len(plan.expansion.files) == 2


def test_a_missing_file_a_folder_and_an_empty_file_are_named_with_file_row_and_column(
    tmp_path: Path,
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "empty.png").write_bytes(b"")
    grid = tmp_path / "grid.csv"
    grid.write_text(
        "prompt,image_urls\nA watch,./images/nope.png\nA strap,images\nA box,empty.png\n"
    )
    found = problems(grid)
    assert found == [
        f"grid.csv:row 2:image_urls: './images/nope.png' is not a web address and there is no "
        f"such file (looked for {tmp_path}/images/nope.png); file paths are relative to the "
        f"experiment's folder ({tmp_path}), web addresses start with https://",
        "grid.csv:row 3:image_urls: 'images' is a folder, not a file; name the image file "
        "inside it",
        "grid.csv:row 4:image_urls: 'empty.png' is an empty file; save the image again",
    ]


def test_a_file_of_the_wrong_type_says_what_it_is_and_where_it_belongs(tmp_path: Path) -> None:
    (tmp_path / "anim.gif").write_bytes(b"GIF89a" + bytes(30))
    image(tmp_path / "watch.png")
    (tmp_path / "notes.png").write_text("not a picture at all, just words")
    sparse(tmp_path / "clip.mp4", MP4_HEAD, 1000)
    grid = tmp_path / "grid.csv"
    grid.write_text(
        "prompt,image_urls,video_urls,audio_urls\n"
        "A,anim.gif,,\n"
        "B,watch.png,watch.png,\n"
        "C,notes.png,,\n"
        "D,watch.png,,clip.mp4\n"
    )
    assert problems(grid) == [
        "grid.csv:row 2:image_urls: 'anim.gif' is a GIF image; image_urls takes JPEG, PNG or "
        "WebP files; save it as JPEG or PNG",
        "grid.csv:row 3:video_urls: 'watch.png' is a PNG image; video_urls takes MP4 or MOV "
        "files; put it in image_urls",
        "grid.csv:row 4:image_urls: 'notes.png' is not an image, video or audio file runner "
        "recognises; image_urls takes JPEG, PNG or WebP files; save it as JPEG or PNG",
        "grid.csv:row 5:audio_urls: 'clip.mp4' is an MP4 video; audio_urls takes MP3 or WAV "
        "files; put it in video_urls",
    ]


def test_files_over_the_api_size_limits_are_refused_and_files_at_them_are_not(
    tmp_path: Path,
) -> None:
    sparse(tmp_path / "big.png", PNG_HEAD, 30_000_001)
    sparse(tmp_path / "big.mp4", MP4_HEAD, 50_000_001)
    sparse(tmp_path / "big.mp3", MP3_HEAD, 15_000_001)
    sparse(tmp_path / "ok.png", PNG_HEAD, 30_000_000)
    sparse(tmp_path / "ok.mp4", MP4_HEAD, 50_000_000)
    sparse(tmp_path / "ok.mp3", MP3_HEAD, 15_000_000)
    grid = tmp_path / "grid.csv"
    grid.write_text(
        "prompt,image_urls,video_urls,audio_urls\n"
        "A,big.png,big.mp4,big.mp3\n"
        "B,ok.png,ok.mp4,ok.mp3\n"
    )
    assert problems(grid) == [
        "grid.csv:row 2:audio_urls: 'big.mp3' is 15,000,001 bytes; the API takes audio tracks "
        "of at most 15 MB (15,000,000 bytes): make it smaller (resize or compress it)",
        "grid.csv:row 2:image_urls: 'big.png' is 30,000,001 bytes; the API takes images of at "
        "most 30 MB (30,000,000 bytes): make it smaller (resize or compress it)",
        "grid.csv:row 2:video_urls: 'big.mp4' is 50,000,001 bytes; the API takes videos of at "
        "most 50 MB (50,000,000 bytes): make it smaller (resize or compress it)",
    ]
    sparse(tmp_path / "huge.png", PNG_HEAD, 45_200_000)
    grid.write_text("prompt,image_urls\nA,huge.png\n")
    (found,) = problems(grid)
    assert "'huge.png' is 45.2 MB; the API takes images of at most 30 MB" in found


def test_a_file_address_is_refused_with_the_path_to_write_instead(tmp_path: Path) -> None:
    image(tmp_path / "watch.png")
    grid = tmp_path / "grid.csv"
    grid.write_text(f"prompt,image_urls\nA watch,file://{tmp_path}/watch.png\n")
    (found,) = problems(grid)
    assert "is a file address: write the file's path instead" in found


def test_web_addresses_and_files_mix_in_one_cell(tmp_path: Path) -> None:
    image(tmp_path / "first.png")
    grid = tmp_path / "grid.csv"
    grid.write_text('prompt,image_urls\nA watch,"first.png\nhttps://images.example.com/last.png"\n')
    (variant,) = make_plan(grid).expansion.variants
    assert variant.request.image_urls[0].startswith("sha256:")
    assert variant.request.image_urls[1] == "https://images.example.com/last.png"
    assert dict(variant.values)["image_urls"] == "first.png https://images.example.com/last.png"


def test_sidecar_defaults_and_parquet_lists_name_files_relative_to_the_experiment(
    tmp_path: Path,
) -> None:
    image(tmp_path / "img" / "watch.png")
    grid = tmp_path / "grid.csv"
    grid.write_text("prompt\nA watch\n")
    (tmp_path / "grid.toml").write_text('[defaults]\nimage_urls = "img/watch.png"\n')
    (variant,) = make_plan(grid).expansion.variants
    assert variant.request.image_urls[0].startswith("sha256:")
    frame = pd.DataFrame({"prompt": ["A watch"], "image_urls": [["img/watch.png"]]})
    frame.to_parquet(tmp_path / "grid.parquet")
    (variant,) = make_plan(tmp_path / "grid.parquet").expansion.variants
    assert variant.request.image_urls[0].startswith("sha256:")


def test_each_file_is_read_once_however_many_cells_name_it(tmp_path: Path) -> None:
    path = image(tmp_path / "watch.png")
    files = LocalFiles(tmp_path)
    first = files.check("watch.png", "image_urls")
    os.remove(path)  # a second check of the same path uses what the first one found
    assert files.check("watch.png", "image_urls") == first


def test_the_plan_lists_the_files_it_will_upload(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    image(tmp_path / "images" / "watch.png")
    grid = tmp_path / "grid.csv"
    grid.write_text("prompt,image_urls,style\nA watch {{ style }},./images/watch.png,a | b\n")
    text = cli("plan", grid)
    assert text.exit_code == 0, text.output
    assert "Files to upload (each before the first job that needs it; reused for 72 h):" in (
        text.stdout
    )
    assert "  images/watch.png  PNG image, " in text.stdout
    as_json = json.loads(cli("plan", grid, "--json").stdout)
    (entry,) = as_json["local_files"]
    assert entry["column"] == "image_urls" and entry["type"] == "image/png"
    assert entry["sha256"] == hash_file(tmp_path / "images" / "watch.png")


def test_types_are_told_by_their_first_bytes() -> None:
    assert sniff(b"\xff\xd8\xff\xe0" + bytes(12)) == "image/jpeg"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "audio/wav"
    assert sniff(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00") == "video/quicktime"
    assert sniff(b"\x00\x00\x00\x08wide\x00\x00\x00\x00") == "video/quicktime"
    assert sniff(MP4_HEAD) == "video/mp4"
    assert sniff(b"\xff\xfb\x90\x00" + bytes(12)) == "audio/mpeg"
    assert sniff(b"\x00\x00\x00\x18ftypheic" + bytes(4)) == "image/heic"
    assert sniff(b"%PDF-1.7" + bytes(8)) == "application/pdf"
    assert sniff(b"hello world, plain") is None
