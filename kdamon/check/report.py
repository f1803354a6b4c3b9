"""``kdamon check`` reports for machines: the JSON document and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from kdamon.check.compare import Comparison
from kdamon.check.results import KernelReport, Status

__all__ = ["to_json", "to_junit"]


def to_json(reports: Sequence[KernelReport], comparisons: Sequence[Comparison] = ()) -> dict[str, Any]:
    """Every kernel's results with per-check timings, and each comparison with the baseline."""
    from kdamon import __version__

    return {
        "kdamon": __version__,
        "ok": all(r.ok for r in reports),
        "kernels": [r.to_dict() for r in reports],
        "comparisons": [c.to_dict() for c in comparisons],
    }


def to_junit(reports: Sequence[KernelReport]) -> str:
    """JUnit XML: one ``testsuite`` per kernel, one ``testcase`` per check."""
    root = ET.Element("testsuites", name="kdamon check")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    time_total = 0.0
    for report in reports:
        counts = {
            "tests": len(report.results),
            "failures": report.count(Status.FAIL),
            "errors": report.count(Status.ERROR),
            "skipped": report.count(Status.SKIP),
        }
        elapsed = sum(r.duration_s for r in report.results)
        attrib = {"name": report.kernel, "time": f"{elapsed:.3f}", **{k: str(v) for k, v in counts.items()}}
        suite = ET.SubElement(root, "testsuite", attrib)
        props = ET.SubElement(suite, "properties")
        for name, value in (
            ("kernel", report.kernel),
            ("release", report.release),
            ("accel", report.accel),
            ("wall_time_s", f"{report.elapsed_s:.1f}"),
        ):
            ET.SubElement(props, "property", name=name, value=value)
        for result in report.results:
            case = ET.SubElement(
                suite,
                "testcase",
                name=result.id,
                time=f"{result.duration_s:.3f}",
                classname=f"kdamon.check.{report.kernel}.{result.group or 'check'}",
            )
            if result.status is Status.FAIL:
                ET.SubElement(case, "failure", message=result.message[:500], type="failure").text = result.message
            elif result.status is Status.ERROR:
                ET.SubElement(case, "error", message=result.message[:500], type="error").text = result.message
            elif result.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=result.message[:500])
            if result.title:
                ET.SubElement(case, "system-out").text = result.title
        for key in totals:
            totals[key] += counts[key]
        time_total += elapsed
    for key, total in totals.items():
        root.set(key, str(total))
    root.set("time", f"{time_total:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
