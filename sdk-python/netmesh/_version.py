"""The netmesh package version (kept equal to the libnet release it bundles)."""

__version__ = "0.1.0"
