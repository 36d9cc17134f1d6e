"""`make` (its help) colours the target names on a terminal only: piped or redirected, plain text."""

import os
import pty
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_make_help_has_no_colour_codes_when_piped():
    out = subprocess.run(["make", "--no-print-directory", "-C", str(REPO)], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")}, timeout=60)
    assert out.returncode == 0
    assert "\x1b" not in out.stdout
    assert "  demo " in out.stdout and "whole study on the demo data" in out.stdout


def test_make_help_colours_the_targets_on_a_terminal():
    leader, follower = pty.openpty()
    process = subprocess.Popen(["make", "--no-print-directory", "-C", str(REPO)], stdout=follower, stderr=follower,
                               env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")})
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closed: make has ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    assert "\x1b[36mdemo" in text and "\x1b[0m" in text
