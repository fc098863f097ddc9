"""One line that names the machine a benchmark ran on (shared by the scripts in this folder)."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path


def describe(packages: tuple[str, ...] = ()) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    parts = [cpu, f"{os.cpu_count()} cores", f"{mem:.0f} GiB", f"Python {platform.python_version()}"]
    for name in packages:
        try:
            module = __import__(name)
        except ImportError:
            continue
        parts.append(f"{name} {module.__version__}")
        if name == "torch":
            parts.append(f"GPU {module.cuda.get_device_name(0) if module.cuda.is_available() else 'none'}")
    parts.append(datetime.date.today().isoformat())
    return "; ".join(parts)
