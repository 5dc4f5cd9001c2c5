"""irm: worm infection response orchestrator (CERT SG IRM #1 driven through staged Ansible plays).

Kept import-light: the lab agents run ``python -m orchestrator.lab.agent`` inside namespaces and
must start quickly with the standard library only.
"""

__version__ = "0.1.0"
