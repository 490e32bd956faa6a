"""Imported by ``memlens-autostart.pth`` when ``MEMLENS_MONITOR`` is set.

Starts the always-on monitor for an unmodified program
(``MEMLENS_MONITOR=1 python app.py``), configured from the usual sources. A bad
configuration prints one line and the program runs unmonitored.
"""

from memlens.service.autostart import autostart

autostart()
