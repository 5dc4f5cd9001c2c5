"""Automatic containment (irm watch): the signed containment policy, its trigger, the watcher."""
