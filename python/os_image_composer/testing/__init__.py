"""Test support: signed loopback Debian repositories and a mirror of real Debian packages.

These modules use only the standard library and the host's Debian tools (dpkg-deb, gpg, apt), so
they run without the native module and can be called as scripts.
"""
