"""chart.py -- the benchmark drivers' PNG chart, drawn by gnuplot (Debian: gnuplot-nox).

One panel per measure (time, peak RSS, ...), each a clustered bar chart: a
cluster per workload, a bar per allocator.  Every value is divided by the
reference allocator's value of the same workload, so workloads of very
different scales share one axis (logarithmic: 0.5x and 2x are as far from 1);
a missing value (failed or skipped run) leaves a gap.  The absolute figures
are in the markdown table the chart is written next to.

Python 3 standard library only; gnuplot is run as a program.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Optional


def gnuplot_path() -> Optional[str]:
    return shutil.which("gnuplot")


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_chart(path: str, title: str, groups: list[str], series: list[str], reference: str,
                panels: list[tuple[str, dict[tuple[str, str], Optional[float]]]],
                subtitle: str = "") -> Optional[str]:
    """Draw the chart to `path` (PNG).  panels: (measure's name, {(group, series): value}).
    Returns None on success, else why no chart was written."""
    gp = gnuplot_path()
    if gp is None:
        return "gnuplot not found (Debian: apt-get install gnuplot-nox)"
    if not groups or not series or not panels:
        return "nothing to draw"
    width = max(900, 90 + len(groups) * (18 * len(series) + 24))
    height = 120 + 300 * len(panels)
    with tempfile.TemporaryDirectory(prefix="bench-chart.") as tmp:
        lines = [
            f"set terminal pngcairo size {width},{height} font 'DejaVu Sans,10' noenhanced",
            f"set output {_quote(os.path.abspath(path))}",
            "set datafile missing '?'",
            "set style data histogram",
            "set style histogram cluster gap 1",
            "set style fill solid 0.85 border -1",
            "set boxwidth 0.9",
            "set logscale y 2",
            "set grid ytics",
            "set key outside right top vertical",
            "set xtics rotate by -30 nomirror",
            "set ytics format '%gx'",
            f"set multiplot layout {len(panels)},1 title {_quote(title)[:-1] + (chr(92) + 'n' + _quote(subtitle)[1:] if subtitle else chr(34))}",
        ]
        for i, (measure, values) in enumerate(panels):
            data = os.path.join(tmp, f"panel{i}.dat")
            present = [v for v in values.values() if v is not None and v > 0]
            lo, hi = 1.0, 1.0
            ratios: dict[tuple[str, str], Optional[float]] = {}
            for g in groups:
                ref = values.get((g, reference))
                for s in series:
                    v = values.get((g, s))
                    r = v / ref if (v is not None and ref) else None
                    ratios[(g, s)] = r
                    if r is not None and r > 0:
                        lo, hi = min(lo, r), max(hi, r)
            with open(data, "w") as f:
                for g in groups:
                    cells = ["?" if ratios[(g, s)] is None else f"{ratios[(g, s)]:.6g}" for s in series]
                    f.write(_quote(g) + " " + " ".join(cells) + "\n")
            if not present:
                continue
            # A range in powers of two that holds every bar, with the bars'
            # common base (the bottom of the axis) below the smallest.
            ymin, ymax = 0.5, 2.0
            while ymin > lo / 1.15:
                ymin /= 2
            while ymax < hi * 1.15:
                ymax *= 2
            lines += [
                f"set xrange [-0.6:{len(groups) - 0.4:g}]",
                f"set ylabel {_quote(measure + ' / ' + reference + chr(39) + 's')}",
                f"set yrange [{ymin:g}:{ymax:g}]",
            ]
            plots = []
            for j, s in enumerate(series):
                src = _quote(data) if j == 0 else "''"
                xt = ":xtic(1)" if j == 0 else ""
                plots.append(f"{src} using {j + 2}{xt} title {_quote(s)}")
            lines.append("plot " + ", ".join(plots))
        lines.append("unset multiplot")
        script = os.path.join(tmp, "chart.gp")
        with open(script, "w") as f:
            f.write("\n".join(lines) + "\n")
        try:
            out = subprocess.run([gp, script], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            return f"gnuplot failed: {e}"
        if out.returncode != 0 or not os.path.isfile(path):
            return f"gnuplot failed (exit {out.returncode}): {out.stderr.strip()[-400:]}"
    return None
