"""Summarise a py-spy ``--format raw`` profile: the top self-time and inclusive entries.

Run: ``python tests/bench/profile_top.py profile.raw`` on a file written by
``py-spy record --pid <API pid> -f raw -o profile.raw``.
"""

from __future__ import annotations

import collections
import re
import sys

_LINE = re.compile(r":\d+\)")


def summarise(path: str) -> None:
    """Print the top self-time frames and the inclusive share of the server's own frames."""
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():
                continue
            samples = int(count)
            frames = [_LINE.sub(")", frame) for frame in stack.split(";")[1:]]
            if not frames:
                continue
            total += samples
            self_time[frames[-1]] += samples
            for frame in set(frames):
                inclusive[frame] += samples
    print(f"samples: {total}")
    print("-- self time, top 12")
    for frame, samples in self_time.most_common(12):
        print(f"{100 * samples / total:5.1f}% {frame}")
    print("-- inclusive, the server's own frames, top 20")
    own = [(frame, samples) for frame, samples in inclusive.most_common() if "nexysync_server" in frame]
    for frame, samples in own[:20]:
        print(f"{100 * samples / total:5.1f}% {frame}")


if __name__ == "__main__":
    summarise(sys.argv[1])
