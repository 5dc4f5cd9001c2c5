"""Identification (IRM #1 phase 2): where irm learns of infections (the detection sources), what it
proposes from them (``irm identify``: the worm, its vectors, the perimeter), and ``irm status``'s reading
of postures and detections."""
