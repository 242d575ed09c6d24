"""Figures: the plotting helpers that studies (their verdict figures) and the report share.

Below both: a figure module imports neither `raremix.studies` nor `raremix.report`, and no
study imports the report. `plots` holds saving, colours, axes and the frontier and
heatmap figures; `bars` the per-seed bar charts.
"""
