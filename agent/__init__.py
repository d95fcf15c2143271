"""keytool's ssh-agent: a pure keyring, a pure request handler and a small asyncio server."""
