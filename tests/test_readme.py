"""The README's embedding examples run as written."""
from __future__ import annotations

import os
import re

from .conftest import make_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_blocks() -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## Embedding") : text.index("## The command line")]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_embedding_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cat.jpg").write_bytes(make_image("JPEG", (400, 300), seed=42))
    (tmp_path / "big.iso").write_bytes(os.urandom(300_000))
    blocks = python_blocks()
    assert len(blocks) == 3
    namespace: dict = {"chunks": [b"first ", b"second"]}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["paste"].filename == "name.bin"
    assert namespace["thumb"].width == 200 and namespace["thumb_bytes"][:3] == b"\xff\xd8\xff"
    assert namespace["result"].size == 300_000
    assert (tmp_path / "copy.iso").read_bytes() == (tmp_path / "big.iso").read_bytes()
    namespace["service"].close()
