"""Remediation (IRM #1 step 4): the validated plan (``plan``) and the phase that carries it out with a
canary group first (``phase``)."""
