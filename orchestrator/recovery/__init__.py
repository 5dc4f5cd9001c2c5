"""Recovery (IRM #1 step 5): the step table in IRM's fixed order (``table``) and the phase that runs it
one monitored, approved step at a time (``phase``)."""
