"""The SSH client protocol, sans-IO: bytes in, events and bytes out."""
