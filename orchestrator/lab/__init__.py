"""The namespace lab: builder (``builder``), wiring plan (``topology``), traffic probes (``traffic``)
and the in-namespace programs (``agent``, ``probe``: standard library only)."""
