"""keytool: SSH keys, an agent and copy-id, speaking SSH itself."""

__version__ = "0.1.0"
