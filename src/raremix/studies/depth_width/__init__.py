"""Depth vs width at a fixed parameter budget."""

from raremix.studies.record import Study

STUDIES = [Study("depth-width", "raremix.studies.depth_width.verdict:depth_width_verdict")]
