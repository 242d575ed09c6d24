"""The injection report's own text: how to read the heatmap."""

HOW_HEATMAP = (
    "Each cell is the final accuracy (mean over seeds) of one injected task at one injection "
    "rate (row, highest at the top) and model size (column); red boxes reach 0.8. If larger "
    "models learn at lower rates, the boxed region reaches further down in the right-hand "
    "columns."
)
