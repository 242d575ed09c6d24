"""`raremix advise`: from a task inventory, a learned rule, a probability and a budget,
pilot runs → laws over share × size × budget → the cheapest of bigger / longer / remixed
(or a combination) that learns the rare tasks while holding the common ones.

inventory (what you have and want) → pilots (a study, run by the study runner; every
evaluation a budget point) → law (per-task logistic laws, bootstrapped over runs: the
onset law of the targets, the accuracy law of the common tasks) → recommend (the search,
priced in FLOPs).
"""

from raremix.advise.inventory import Inventory, load_inventory
from raremix.advise.law import LawFit, fit_laws
from raremix.advise.recommend import Advice, Candidate, Goal, Laws, Size, recommend

__all__ = [
    "Advice",
    "Candidate",
    "Goal",
    "Inventory",
    "LawFit",
    "Laws",
    "Size",
    "fit_laws",
    "load_inventory",
    "recommend",
]
