"""The crisis cell's live board (``irm serve``): the live feed a running command writes (``feed``), the
snapshot built from the journal, the inventory and the feeds (``state``), and the read-only web
application that pushes it to browsers (``web``)."""
