"""The live page's bounds that the CLI shows in its help, here so the CLI need not import the server (asyncio)
to show them; the page server reads them from here too."""
from __future__ import annotations

VIEWERS = 8            # video viewers the live page serves at once (--viewers)
MIN_TOKEN = 16         # characters of the live page's token off loopback
