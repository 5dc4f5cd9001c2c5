"""Containment (IRM #1 step 3): the stage table (``table``) and the phase that applies it (``phase``)."""
