"""Preparation (IRM #1 step 1): ``validation`` checks, before any crisis, everything a later command
would refuse (the inventory, the management path under every containment, plans and incident files)."""
