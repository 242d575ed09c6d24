"""`raremix advise`: from a task inventory, a target accuracy and a budget, pilot runs → a
data-mixing law → the cheapest (model size, mixture) predicted to reach the target on the
rare tasks while holding the common ones.

inventory (what you have and want) → pilots (a study, run by the study runner) → law (a
per-task logistic regression on share and size, bootstrapped) → recommend (the search).
"""

from raremix.advise.inventory import Inventory, load_inventory
from raremix.advise.law import LawFit, fit_laws
from raremix.advise.recommend import Advice, Candidate, Goal, Size, recommend

__all__ = [
    "Advice",
    "Candidate",
    "Goal",
    "Inventory",
    "LawFit",
    "Size",
    "fit_laws",
    "load_inventory",
    "recommend",
]
