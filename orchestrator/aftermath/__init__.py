"""Aftermath (IRM #1 step 6): the crisis report built from the journal (``report``, ``templates/``)."""
