"""The connection protocol's numbers and names (RFC 4254, OpenSSH's PROTOCOL files):
message numbers, global request and channel type names, open failure reason codes,
and the window and packet sizes a channel starts with.
"""

from __future__ import annotations

# RFC 4254 §9: message numbers
MSG_GLOBAL_REQUEST = 80
MSG_REQUEST_SUCCESS = 81
MSG_REQUEST_FAILURE = 82
#: the global request ssh sends to learn that the server is still there (PROTOCOL)
KEEPALIVE = "keepalive@openssh.com"
#: the server's list of its host keys, and our request for proofs (PROTOCOL §2.5)
HOSTKEYS_ANNOUNCE = "hostkeys-00@openssh.com"
HOSTKEYS_PROVE = "hostkeys-prove-00@openssh.com"
#: channels to and from Unix-domain sockets (PROTOCOL §2.4)
DIRECT_STREAMLOCAL = "direct-streamlocal@openssh.com"
FORWARDED_STREAMLOCAL = "forwarded-streamlocal@openssh.com"
FORWARDED_TCPIP = "forwarded-tcpip"
#: a channel to the client's agent (PROTOCOL.agent, ssh -A)
AUTH_AGENT = "auth-agent@openssh.com"
#: a channel from an X client at the server to our display (§6.3, ssh -X)
X11 = "x11"
MSG_CHANNEL_OPEN = 90
MSG_CHANNEL_OPEN_CONFIRMATION = 91
MSG_CHANNEL_OPEN_FAILURE = 92
MSG_CHANNEL_WINDOW_ADJUST = 93
MSG_CHANNEL_DATA = 94
MSG_CHANNEL_EXTENDED_DATA = 95
MSG_CHANNEL_EOF = 96
MSG_CHANNEL_CLOSE = 97
MSG_CHANNEL_REQUEST = 98
MSG_CHANNEL_SUCCESS = 99
MSG_CHANNEL_FAILURE = 100

# RFC 4254 §5.2: data type code of stderr in SSH_MSG_CHANNEL_EXTENDED_DATA
EXTENDED_DATA_STDERR = 1
# RFC 4254 §5.1: reason code for a refused open
OPEN_ADMINISTRATIVELY_PROHIBITED = 1
OPEN_CONNECT_FAILED = 2
#: RFC 4254 §5.1 reason codes of SSH_MSG_CHANNEL_OPEN_FAILURE, worded as ssh words them
OPEN_FAILURE_REASONS = {
    1: "administratively prohibited",
    2: "connect failed",
    3: "unknown channel type",
    4: "resource shortage",
}

# OpenSSH's session defaults (channels.h CHAN_SES_WINDOW_DEFAULT / CHAN_SES_PACKET_DEFAULT)
DEFAULT_WINDOW = 2 * 1024 * 1024
DEFAULT_MAX_PACKET = 32 * 1024
MAX_WINDOW = 0xFFFF_FFFF  # RFC 4254 §5.2: a window may not exceed 2^32 - 1
