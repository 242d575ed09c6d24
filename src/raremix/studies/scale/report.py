"""The scale-vs-mix report's own text: how to read the frontier figure."""

HOW_FRONTIER = (
    "Each line joins the means over seeds of one mix: the rare task's held-out accuracy (left) "
    "and the common tasks' (right), pooled by held-out n; error bars are one sd over seeds, "
    "cut at 0 and 1. The small circles just right of each mean are the single seeds: with few "
    "seeds, read them rather than the bar. A mix that lifts the left panel without lowering the "
    "right one protects the rare task at no cost. The figure compares accuracies at the "
    "base budget; what each option costs in FLOPs to reach the target is the verdict's "
    "compute-equivalence."
)
