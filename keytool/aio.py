"""asyncio for keytool's command-line processes, imported without its TLS support.

asyncio imports the ssl module only to offer TLS, which keytool never speaks; on the
client's start-up path that import is a noticeable share of ``keytool exec``'s whole
run. Hiding ssl while asyncio loads makes asyncio treat TLS as unavailable (as on a
Python built without OpenSSL); ssl stays importable for anyone else afterwards.
Use ``from keytool.aio import asyncio`` before anything else imports asyncio; once
asyncio is loaded it changes nothing.
"""

from __future__ import annotations

import sys

if "asyncio" not in sys.modules and "ssl" not in sys.modules:
    sys.modules["ssl"] = None  # type: ignore[assignment]
    try:
        import asyncio
    finally:
        del sys.modules["ssl"]
else:
    import asyncio

__all__ = ["asyncio"]
