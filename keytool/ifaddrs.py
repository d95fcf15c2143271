"""The addresses of a network interface, for ssh's BindInterface (``exec -B``).

getifaddrs(3) through ctypes (the standard library has no binding of it): each
address of the interface that is up, in the kernel's order. ``pick`` then chooses as
ssh does: the first address of the family that is neither loopback nor link-local,
else the first of the family at all. Loaded only when BindInterface is set. The
struct layouts are Linux's (sockaddr starts with a 16-bit family; BSDs have sa_len).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import os
import socket
import sys

#: IFF_UP in ifa_flags
_IFF_UP = 0x1


class _Sockaddr(ctypes.Structure):
    _fields_ = [("sa_family", ctypes.c_ushort), ("sa_data", ctypes.c_ubyte * 14)]


class _Ifaddrs(ctypes.Structure):
    pass


_Ifaddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_Ifaddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.POINTER(_Sockaddr)),
    ("ifa_netmask", ctypes.c_void_p),
    ("ifa_ifu", ctypes.c_void_p),
    ("ifa_data", ctypes.c_void_p),
]

Address = tuple[str, int] | tuple[str, int, int, int]


def addresses(name: str, family: int) -> list[Address]:
    """The socket addresses (port 0) of interface ``name`` in ``family``, in order;
    OSError when the system will not tell."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    head = ctypes.POINTER(_Ifaddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    found: list[Address] = []
    try:
        node = head
        while node:
            entry = node.contents
            node = entry.ifa_next
            if not entry.ifa_addr or entry.ifa_name is None or not entry.ifa_flags & _IFF_UP:
                continue
            if entry.ifa_name.decode("utf-8", "replace") != name:
                continue
            base = ctypes.addressof(entry.ifa_addr.contents)
            if entry.ifa_addr.contents.sa_family != family:
                continue
            if family == socket.AF_INET:  # sockaddr_in: family, port, then the address
                found.append((socket.inet_ntop(family, ctypes.string_at(base + 4, 4)), 0))
            elif family == socket.AF_INET6:  # ... flowinfo, the address, scope id
                raw = ctypes.string_at(base + 8, 16)
                scope = int.from_bytes(ctypes.string_at(base + 24, 4), sys.byteorder)
                found.append((socket.inet_ntop(family, raw), 0, 0, scope))
    finally:
        libc.freeifaddrs(head)
    return found


def pick(name: str, family: int) -> Address | None:
    """The address of interface ``name`` ssh would bind to for ``family``."""
    found = addresses(name, family)

    def local(address: Address) -> bool:
        ip = ipaddress.ip_address(address[0])
        if family == socket.AF_INET:
            return address[0] == "127.0.0.1"  # ssh passes over INADDR_LOOPBACK alone
        return ip.is_loopback or ip.is_link_local

    preferred = [a for a in found if not local(a)]
    choices = preferred or found
    return choices[0] if choices else None
